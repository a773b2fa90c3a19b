"""Labeling with a person in the loop: the labels file and ``tavaal query`` (``labels``), Label
Studio's task export and annotation import (``labelstudio``), and the live ML backend (``serve``)."""
