"""Training on Lightning: run folders, the generic task module, callbacks, the train entry point."""
