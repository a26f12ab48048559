"""The notifications worker: tells buyers what happens to their after-sales requests."""
