"""The intra-operative spine completer: observations in the base frame -> completed L1..L5.

- :mod:`.spine`: anatomical frame, X-ray placement, level split, per-level crops, the
  network with per-point uncertainty (``SpineCompleter``); what the completion node runs.
"""
