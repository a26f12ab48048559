"""The monitoring worker: after-sales figures, alerts as work items, the serial-returner signal,
and each order line's after-sales state for the order system."""
