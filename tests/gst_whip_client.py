"""A WHIP client that is not ours: GStreamer's webrtcbin (Debian's python3-gst-1.0), publishing a
live test picture as VP8. Run with the system Python (/usr/bin/python3), not the project's venv:

    gst_whip_client.py URL API_KEY [PATTERN]

It POSTs its offer once gathering is complete (no trickle), applies the answer, prints
`published <Location>` and runs until killed. Exit status 1 (and a line on stderr) on failure.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

PIPELINE = (
    "videotestsrc is-live=true pattern={pattern} foreground-color=0xffff0000 "
    "! video/x-raw,width=320,height=240,framerate=20/1 ! videoconvert "
    "! vp8enc deadline=1 keyframe-max-dist=20 ! rtpvp8pay pt=96 "
    "! application/x-rtp,media=video,encoding-name=VP8,payload=96 "
    "! webrtcbin name=send bundle-policy=max-bundle"
)


class WhipClient:
    def __init__(self, url: str, key: str, pattern: str) -> None:
        self.url, self.key = url, key
        self.loop = GLib.MainLoop()
        self.pipeline = Gst.parse_launch(PIPELINE.format(pattern=pattern))
        self.webrtc = self.pipeline.get_by_name("send")
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.offered = self.negotiated = False
        transceiver = self.webrtc.emit("get-transceiver", 0)
        transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)

    def fail(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        self.loop.quit()
        sys.exit(1)

    def on_negotiation_needed(self, element: Gst.Element) -> None:
        if self.negotiated:
            return
        self.negotiated = True
        promise = Gst.Promise.new_with_change_func(self.on_offer, element, None)
        element.emit("create-offer", None, promise)

    def on_offer(self, promise: Gst.Promise, element: Gst.Element, _: object) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer")
        if offer is None:
            self.fail(f"create-offer failed: {reply.to_string()}")
            return
        element.emit("set-local-description", offer, Gst.Promise.new())

    def on_gathering(self, element: Gst.Element, _: object) -> None:
        state = element.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and not self.offered:
            self.offered = True
            GLib.idle_add(self.post_offer)

    def post_offer(self) -> bool:
        sdp = self.webrtc.get_property("local-description").sdp.as_text()
        request = urllib.request.Request(
            self.url,
            data=sdp.encode(),
            method="POST",
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {self.key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                status, location, answer = (
                    response.status,
                    response.headers["Location"],
                    response.read(),
                )
        except urllib.error.URLError as exc:
            self.fail(f"WHIP POST failed: {exc}")
            return False
        if status != 201:
            self.fail(f"WHIP POST answered {status}")
        _, message = GstSdp.SDPMessage.new_from_text(answer.decode())
        description = GstWebRTC.WebRTCSessionDescription.new(
            GstWebRTC.WebRTCSDPType.ANSWER, message
        )
        self.webrtc.emit("set-remote-description", description, Gst.Promise.new())
        print(f"published {location}", flush=True)
        return False

    def run(self) -> None:
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", lambda _, m: self.fail(f"GStreamer error: {m.parse_error()}"))
        self.pipeline.set_state(Gst.State.PLAYING)
        self.loop.run()


def main() -> None:
    Gst.init(None)
    url, key = sys.argv[1], sys.argv[2]
    pattern = sys.argv[3] if len(sys.argv) > 3 else "solid-color"
    WhipClient(url, key, pattern).run()


if __name__ == "__main__":
    main()
