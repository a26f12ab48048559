"""The back office: people sign in and act on tickets; their decisions go to Kafka as commands."""
