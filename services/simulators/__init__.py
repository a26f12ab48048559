"""Stand-ins for the outside systems (payment channel, WMS, ERP, marketing), each a separate
process on the real topics. Their behaviour per order or shop is set in Redis (a test/demo
control knob, not business state): ``sim:<system>:<order or shop id>``."""
