"""``classroom agent``: the unattended client of a classroom PC or recording box.

It asks the server for its classroom's lesson (``GET /api/device/lesson`` with its device
credential), joins each lesson at its start over the classroom protocol (docs/protocol.md),
publishes a camera and a microphone (or a synthetic picture and tone), decodes what it receives,
and leaves at the lesson's end. A client: it encodes and decodes, and uses only the public API.
"""

VERSION = "0.1.0"
