"""The core's vertebra status names and their usx_msgs/VertebraCompletion codes.

Here rather than in the completion node, so that tools reading completions (the demo
report, ``usx view``, the multihost monitor) do not import the node, and with it torch.
"""

from __future__ import annotations

from usx_msgs.msg import VertebraCompletion

#: The core's status name (``completion.quality``) -> usx_msgs/VertebraCompletion code.
STATUS_CODE = {
    "ok": VertebraCompletion.STATUS_OK,
    "us_only_fallback": VertebraCompletion.STATUS_US_ONLY_FALLBACK,
    "insufficient_input": VertebraCompletion.STATUS_INSUFFICIENT_INPUT,
    "insufficient_us": VertebraCompletion.STATUS_INSUFFICIENT_US,
    "insufficient_xray": VertebraCompletion.STATUS_INSUFFICIENT_XRAY,
    "low_confidence": VertebraCompletion.STATUS_LOW_CONFIDENCE,
}
#: usx_msgs status code -> the core's status name.
STATUS_NAME = {code: name for name, code in STATUS_CODE.items()}
