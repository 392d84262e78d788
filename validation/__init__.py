"""Validation: tone and compression specs, run as Great Expectations suites over the per-image metrics.

Domain facts 2 to 5 of DESIGN.md: tone drifts per machine and part number and must be checked jointly over
the channels; a training set must match the compression of the online data; cleaning is versioned.
"""
