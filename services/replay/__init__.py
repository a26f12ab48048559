"""Replay: the after-sales state rebuilt from the Kafka log alone, and what-if policy replays.

Everything a worker knows came to it as a message: facts from the order system, buyer requests,
people's decisions from the back office, the WMS's, ERP's, payment channel's and marketing
system's answers (the *inputs*), and what the workers told each other. Replaying the recorded
inputs through the same workers' runtime and use cases, in this process, into a database of its
own, with a clock set to each input's recorded time, rebuilds the rest: ``rebuild`` checks it
against the live database, ``whatif`` runs it twice (today's policy and a changed one) and shows
what would have gone differently. Nothing is published to a live topic.
"""
