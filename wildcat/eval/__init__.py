"""Evaluation (Section 4): metrics, the segmentation of class maps (argmax and CRF), one evaluation
pass per run, the multi-scale combination and submission files for the official servers."""
