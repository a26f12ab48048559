"""The settlement worker: the merchant's statements (``domain.settlement``)."""
