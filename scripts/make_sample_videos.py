"""Write the sample videos in assets/sample/videos: short H.264 clips of simple moving shapes.

Why: the indexer and the video search need real, decodable videos whose content can be put
into words ("a red ball bouncing"), small enough to live in the repository. Drawing them
from formulas keeps every frame deterministic and the licence ours. One clip gets an .srt
sidecar and another a .vtt sidecar (subtitle reading), and one is remuxed into a .mov
container (container coverage). Every file written is checked to decode with decord and
with PyAV.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import decord
import numpy as np
from PIL import Image, ImageDraw

from asset_cli import ASSETS, out_folder

WIDTH, HEIGHT, FPS = 320, 240, 24
FRAME_SECONDS = Fraction(1, FPS)

Frame = Callable[[float], Image.Image]  # seconds since the start -> the frame shown then
Cue = tuple[float, float, str]  # start seconds, end seconds, text


def red_ball_bouncing(t: float) -> Image.Image:
    """A red ball bounces across a green floor from left to right, each bounce lower."""
    floor_y, radius, drop = 190, 18, 140
    image = Image.new("RGB", (WIDTH, HEIGHT), (150, 200, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, floor_y, WIDTH, HEIGHT), fill=(40, 150, 50))
    phase = t + 0.5  # starts at the top of its first fall; one bounce a second
    bounce, within = divmod(phase, 1.0)
    height = drop * 0.7**bounce * 4 * within * (1 - within)
    x, y = 40 + 60 * t, floor_y - radius - height
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(220, 30, 30))
    return image


def blue_square_sliding(t: float) -> Image.Image:
    """A blue square slides from the left edge to the right edge over a white background."""
    side, duration = 60, 3.0
    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    left = -side + (WIDTH + side) * t / duration
    top = (HEIGHT - side) / 2
    ImageDraw.Draw(image).rectangle((left, top, left + side, top + side), fill=(30, 60, 200))
    return image


def yellow_sun_rising(t: float) -> Image.Image:
    """A yellow sun rises out of a dark blue sea while the sky brightens from night to dawn."""
    horizon, radius, duration = 150, 28, 5.0
    progress = t / duration
    night, dawn = np.array([15, 20, 60]), np.array([250, 170, 90])
    sky = tuple(int(c) for c in night + (dawn - night) * progress)
    image = Image.new("RGB", (WIDTH, HEIGHT), sky)
    draw = ImageDraw.Draw(image)
    cy = horizon + radius - (horizon - 20) * math.sin(progress * math.pi / 2)
    draw.ellipse((WIDTH / 2 - radius, cy - radius, WIDTH / 2 + radius, cy + radius), fill=(255, 220, 0))
    draw.rectangle((0, horizon, WIDTH, HEIGHT), fill=(10, 30, 90))  # the sea hides the sun below it
    return image


# name -> (frame function, seconds, subtitle sidecar suffix or None, cues)
CLIPS: dict[str, tuple[Frame, float, str | None, list[Cue]]] = {
    "red_ball_bouncing": (
        red_ball_bouncing,
        4.0,
        ".srt",
        [
            (0.0, 0.5, "A red ball drops towards the green floor."),
            (0.5, 2.5, "It bounces to the right, each bounce lower."),
            (2.5, 4.0, "The ball keeps hopping towards the right edge."),
        ],
    ),
    "blue_square_sliding": (
        blue_square_sliding,
        3.0,
        ".vtt",
        [
            (0.0, 1.0, "A blue square enters from the left."),
            (1.0, 2.0, "It slides across the white background."),
            (2.0, 3.0, "The square leaves on the right."),
        ],
    ),
    "yellow_sun_rising": (yellow_sun_rising, 5.0, None, []),
}
MOV_COPY = ("yellow_sun_rising.mp4", "yellow_sun_rising_copy.mov")


def frames(draw: Frame, count: int) -> Iterator[av.VideoFrame]:
    for index in range(count):
        frame = av.VideoFrame.from_ndarray(np.asarray(draw(index / FPS)), format="rgb24")
        frame.pts, frame.time_base = index, FRAME_SECONDS
        yield frame


def encode(path: Path, draw: Frame, frame_count: int) -> None:
    """H.264 (yuv420p, one keyframe a second, crf 30) in the container the suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        # With the macroblock tree on, x264 output varied by a byte between identical runs (even
        # single-threaded); with it off and one thread, a rerun reproduces every file exactly.
        stream.options = {
            "crf": "30",
            "preset": "medium",
            "g": str(FPS),
            "threads": "1",
            "x264-params": "mbtree=0",
        }
        for frame in frames(draw, frame_count):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def remux(source: Path, target: Path) -> None:
    """Copy the packets of source into the container target's suffix names, no re-encoding."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        in_stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        for packet in inp.demux(in_stream):
            if packet.dts is not None:
                packet.stream = out_stream
                out.mux(packet)


def timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def subtitles(cues: list[Cue], suffix: str) -> str:
    """The cues as SubRip (.srt: numbered, comma before millis) or WebVTT (.vtt: header, dot)."""
    separator = "," if suffix == ".srt" else "."
    blocks = [
        f"{timestamp(start, separator)} --> {timestamp(end, separator)}\n{text}\n"
        for start, end, text in cues
    ]
    if suffix == ".srt":
        return "\n".join(f"{number}\n{block}" for number, block in enumerate(blocks, 1))
    return "WEBVTT\n\n" + "\n".join(blocks)


def verify(path: Path) -> str:
    """Decode every frame with PyAV and with decord; return a one-line summary or raise."""
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    reader = decord.VideoReader(str(path))
    stamps = reader.get_frame_timestamp(range(len(reader)))
    reader.get_batch(range(len(reader)))
    if decoded != len(reader):
        raise RuntimeError(f"{path}: PyAV decoded {decoded} frames, decord counts {len(reader)}")
    return f"{len(reader)} frames, {stamps[-1][1]:.2f} s, {reader.get_avg_fps():.0f} fps"


def build(out: Path) -> list[Path]:
    written = []
    for name, (draw, seconds, suffix, cues) in CLIPS.items():
        video = out / f"{name}.mp4"
        encode(video, draw, round(seconds * FPS))
        written.append(video)
        if suffix:
            sidecar = video.with_suffix(suffix)
            sidecar.write_text(subtitles(cues, suffix), encoding="utf-8")
            written.append(sidecar)
    source, copy = MOV_COPY
    remux(out / source, out / copy)
    written.append(out / copy)
    return written


def main() -> None:
    out = out_folder(__doc__, ASSETS / "sample" / "videos", "the videos and their subtitle sidecars")
    for path in build(out):
        summary = verify(path) if path.suffix in {".mp4", ".mov"} else "subtitles"
        print(f"{path.stat().st_size:>8}  {path}  ({summary})")


if __name__ == "__main__":
    main()
