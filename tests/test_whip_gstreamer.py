"""An independent WHIP client (GStreamer's webrtcbin) publishes into framewire, and its stream
comes back transformed to a WHEP viewer: checked by pixels. Runs in a network namespace of its
own with a veth pair, since libnice does not use loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETWORK = (
    "set -e; ip link set lo up; ip link add fw0 type veth peer name fw1; "
    "ip addr add 10.99.0.1/24 dev fw0; ip addr add 10.99.0.2/24 dev fw1; "
    "ip link set fw0 up; ip link set fw1 up; "
)


def test_a_gstreamer_whip_publisher_is_seen_transformed_by_a_whep_viewer() -> None:
    run = subprocess.run(
        ["unshare", "-n", "sh", "-c", NETWORK + f'exec "{sys.executable}" -m tests.gst_scenario'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["status"] == "active" and result["frames_in"] > 0
    blue, green, red = result["plain_bgr"]
    assert red > 150 and green < 100 and blue < 100, result  # GStreamer's red picture
    assert result["plain_saturation"] > 100, result
    assert result["noir_saturation"] < 15, result  # the prompt turned it gray
