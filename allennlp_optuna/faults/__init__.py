"""Surviving faults: dead workers' trials failed and retried, retries that resume from the killed
trial's checkpoint, storage outages waited out, the identity of the process running a trial, and
the removal of checkpoints nobody will resume from."""
