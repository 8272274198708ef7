"""The weak-to-strong research environment: testbeds, model backends, methods, experiment runner."""
