"""xdist coordination: one GPU per worker, whole shards per worker, and the channel that tells the
controller which of a worker's tests are `vlmsafety_case` tests. Result collection is the
controller's (`plugin/controller.py`)."""
