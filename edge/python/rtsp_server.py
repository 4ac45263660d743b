"""An RTSP camera for the tests: GStreamer's own RTSP server (gst-rtsp-server) streaming a live
H.264 test pattern at rtsp://127.0.0.1:PORT/stream, that dies without a word after FRAMES frames
have been sent (0: never), as a camera that loses power or a network that goes away.

Usage: rtsp_server.py PORT FRAMES   (prints "ready" once it listens)
Needs Debian's python3-gi and gir1.2-gst-rtsp-server-1.0 (scripts/install.sh installs them).
"""
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=15/1 "
    "! x264enc name=enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
    "! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


def main():
    port, frames = int(sys.argv[1]), int(sys.argv[2])
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    sent = [0]

    def count(_pad, _info):
        sent[0] += 1
        if frames and sent[0] == frames:
            # Gone at once: no teardown, no end of stream, the sockets just close.
            GLib.timeout_add(50, lambda: os._exit(0))
        return Gst.PadProbeReturn.OK

    def configured(_factory, media):
        enc = media.get_element().get_by_name("enc")
        enc.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, count)

    factory.connect("media-configure", configured)
    server.get_mount_points().add_factory("/stream", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
