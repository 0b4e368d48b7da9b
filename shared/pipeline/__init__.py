"""The handlers every runtime calls (Functions, executor, replay) and the in-process replay."""
