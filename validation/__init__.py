"""Validation: tone and compression specs, run as Great Expectations suites over the per-image metrics.

The domain facts on tone and compression (docs/domain.md#tone-per-machine to #cleaning): tone drifts per machine and
part number and must be checked jointly over
the channels; a training set must match the compression of the online data; cleaning is versioned.
"""
