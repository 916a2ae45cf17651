"""The `streamd` command: run, listen, scan, check, devices, record, review, ctl.

Exit codes: 0 clean stop, 2 bad config or model (one line on stderr), 1 runtime failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

from streamd.config import (Config, ConfigError, bus_endpoint, config_from_dict, control_endpoint,
                            idle_clip_warning, load_config, runtime_dir)
from streamd.contract import ContractError
from streamd.sounds import Sounds

log = logging.getLogger("streamd")

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2
CONFIG_SEARCH = ("config.yaml", "/etc/streamd/config.yaml")


class UserError(Exception):
    """Exit 2 with this one line."""


def find_config(path: str | None) -> Path | None:
    """--config, else $STREAMD_CONFIG, else ./config.yaml, else /etc/streamd/config.yaml, else None (defaults)."""
    if path:
        return Path(path)
    if os.environ.get("STREAMD_CONFIG"):
        return Path(os.environ["STREAMD_CONFIG"])
    return next((Path(p) for p in CONFIG_SEARCH if Path(p).is_file()), None)


def read_config(path: str | None, source: str | None = None) -> tuple[Config, Path | None]:
    found = find_config(path)
    config = load_config(found) if found else config_from_dict({})
    if source:
        if source.startswith("file:"):  # a command-line path is relative to the working directory
            source = f"file:{Path(source[len('file:'):]).resolve()}"
        first = dataclasses.replace(config.inputs[0], source=source)
        config = dataclasses.replace(config, inputs=(first,))
        if not (first.source in ("mic", "stdin") or first.source.startswith(("file:", "stdin:"))):
            raise UserError(f"--source: got {source!r}, expected mic, file:PATH or stdin")
    return config, found


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# ------------------------------------------------------------------------------------------ run


def cmd_run(args) -> int:
    from streamd.service import Service

    config, path = read_config(args.config, args.source)
    level = args.log_level or config.logging.level
    setup_logging("WARNING")  # a start-up failure is one line on stderr, not a log of what went well before it
    console = _console_printer() if sys.stdout.isatty() else None
    service = Service(config, path, fast=args.fast, console=console)
    logging.getLogger().setLevel(level)
    log.info("started: config %s; models %s; inputs %s; bus %s; control %s", path or "built-in defaults",
             ", ".join(f"{s.name} (hop {s.hop_samples})" for s in service.specs),
             ", ".join(f"{i.name}={i.source}" for i in config.inputs), service.publisher.endpoint,
             service.control.endpoint)
    code = service.run(wait_for_subscriber_s=args.wait_for_subscriber)
    # The service has stopped: sockets closed, clips written. Interpreter teardown (scipy, onnxruntime:
    # ~0.2 s of CPU, over 2 s measured on a busy 2-core machine) would hold up the exit that SIGTERM
    # promises within 2 s, and there is nothing left for it to do; so flush and leave now.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _console_printer():
    def show(body: bytes) -> None:
        event = json.loads(body)
        if event["type"] != "scores":
            print(describe(event), flush=True)
    return show


def describe(event: dict, with_model: bool = False) -> str:
    """One line for people; with_model names the model that decided (where several publish the same label)."""
    at = f"[{event['position_s']:.2f}s]" if event.get("position_s") is not None else "[-]"
    kind = event["type"]
    source = f"{event.get('stream')} {event['model']}" if with_model and event.get("model") else event.get("stream")
    if kind == "keyword":
        return f"{at} {source} keyword {event['keyword']} {event['score']:.2f}"
    if kind == "tag_start":
        return f"{at} {source} tag {event['tag']} start (from {event['start_s']:.2f}s, peak {event['peak_score']:.2f})"
    if kind == "tag_end":
        return (f"{at} {source} tag {event['tag']} end after {event['duration_s']:.2f}s "
                f"(peak {event['peak_score']:.2f}, mean {event['mean_score']:.2f}, {event['reason']})")
    if kind == "scores":
        top = sorted(event["scores"].items(), key=lambda kv: -kv[1])[:5]
        return f"{at} {source} " + ", ".join(f"{k} {v:.2f}" for k, v in top)
    return f"{at} {event.get('stream') or 'streamd'} {event['state']}: {event['message']}"


# ------------------------------------------------------------------------------------------ listen


def cmd_listen(args) -> int:
    import zmq

    endpoint = args.endpoint
    if endpoint is None:
        found = find_config(args.config)
        endpoint = bus_endpoint(load_config(found)) if found else f"ipc://{runtime_dir() / 'events'}"
    topics = args.topic or ([""] if not args.scores else [])
    if args.scores:
        topics.append("scores")
    # --exec acts once per sound: it follows every model's tag events and the service's restarts
    sounds = Sounds() if args.exec_command and not args.every_model else None
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(endpoint)
    for topic in topics + (["tag.", "status"] if sounds else []):
        sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
    last_shown = time.monotonic()  # --timeout counts from the last event of the asked topics
    try:
        while True:
            if args.timeout:
                left_ms = (args.timeout - (time.monotonic() - last_shown)) * 1000
                if left_ms <= 0 or not sub.poll(left_ms):
                    return EXIT_OK
            topic, body = sub.recv_multipart()[:2]
            acts = sounds.acts_on(json.loads(body)) if sounds else True
            if not any(topic.startswith(t.encode()) for t in topics):
                continue  # followed for the bookkeeping only
            last_shown = time.monotonic()
            if args.scores and topic == b"scores" and sys.stdout.isatty():
                print("\r\033[K" + describe(json.loads(body)), end="", flush=True)
            else:
                print(body.decode(), flush=True)
            if args.exec_command and acts:
                _exec_for_event(args.exec_command, topic, body)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        sub.close()
        context.term()


def _exec_for_event(command: str, topic: bytes, body: bytes) -> None:
    from streamd.hooks import run_command

    code = run_command(command, topic, body)
    if code != 0:  # the listener goes on: one failed action must not end the ones after it
        print(f"streamd listen: --exec command exited with {code} for {topic.decode()}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ scan


def cmd_scan(args) -> int:
    from streamd.events import Sequencer
    from streamd.scheduler import Scheduler
    from streamd.service import load_models
    from streamd.sources import open_source

    config, _ = read_config(args.config)
    setup_logging(args.log_level or "WARNING")
    specs = load_models(config)
    rate = specs[0].model.info.sample_rate_hz
    stream = config.inputs[0].name
    several = len(specs) > 1  # then each line names its model

    def show_hop(run, end_sample, scores):
        start_s, end_s = (end_sample - run.hop_samples) / rate, end_sample / rate
        top = sorted(zip(run.labels, scores), key=lambda ls: -ls[1])[: args.top]
        model = f"{run.spec.name}: " if several else ""
        print(f"[{start_s:.2f}s]-[{end_s:.2f}s] {model}" + ", ".join(f"{l.name} {s:.2f}" for l, s in top))

    for path in args.files:
        if not args.json:
            print(f"== {path}")
        source = open_source(f"file:{Path(path).resolve()}", stream, rate, fast=True,
                             ring_seconds=config.scheduler.ring_s)
        scheduler = Scheduler([source], specs, config.keyword_settings(), config.tag_settings(),
                              config.scheduler.max_lag_s, config.bus.scores_interval_s if config.bus.scores else None,
                              on_hop=None if args.json else show_hop)
        sequencer = Sequencer()  # each file is a stream of its own, as if `streamd run --source file:PATH` ran it
        source.start()
        events = []
        while not scheduler.finished:
            events = scheduler.tick()
            for event in events:
                _print_event(sequencer, event, args.json, several)
        for event in scheduler.flush():
            _print_event(sequencer, event, args.json, several)
        source.stop()
    return EXIT_OK


def _print_event(sequencer, event, as_json: bool, with_model: bool = False) -> None:
    body = sequencer.encode(event)[1]
    print(body.decode() if as_json else "   " + describe(json.loads(body), with_model), flush=True)


# ------------------------------------------------------------------------------------------ check, devices, ctl


def cmd_check(args) -> int:
    from streamd.clips import clips_dir, folder_problem
    from streamd.service import load_models

    config, path = read_config(args.config)
    specs = load_models(config)
    clips = ""
    if config.clips.enabled:
        folder = clips_dir(config)
        problem = folder_problem(folder)
        if problem:
            raise ConfigError(f"clips.dir: cannot create or use {str(folder)!r}: {problem}")
        clips = f"; clips in {folder}"
    models = ", ".join(f"{s.name} ({s.model.info.family}, hop {s.model.info.hop_ms(s.hop_samples):g} ms)" for s in specs)
    print(f"ok: {path or 'built-in defaults'}: models {models}; {len(config.keywords)} keywords, {len(config.tags)} tags; "
          f"bus {bus_endpoint(config)}, control {control_endpoint(config)}{clips}")
    warning = idle_clip_warning(config)
    if warning:
        print(f"note: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_devices(args) -> int:
    from streamd.capture import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("no input devices")
    for d in devices:
        mark = "*" if d["default"] else " "
        print(f"{mark} {d['index']:3d}  {d['name']}  ({d['max_input_channels']} ch, {d['default_samplerate_hz']} Hz)")
    return EXIT_OK


def cmd_ctl(args) -> int:
    from streamd.control import request

    config, _ = read_config(args.config)
    command = {"cmd": args.command}
    if args.command in ("enable", "disable", "set_threshold"):
        if not args.name:
            raise UserError(f"ctl {args.command} needs a NAME")
        command["name"] = args.name
    if args.command == "set_threshold":
        if args.threshold is None:
            raise UserError("ctl set_threshold needs NAME THRESHOLD")
        command["threshold"] = args.threshold
    reply = request(args.endpoint or control_endpoint(config), command, timeout_s=args.timeout)
    print(json.dumps(reply, indent=2 if sys.stdout.isatty() else None))
    return EXIT_OK if reply.get("ok") else EXIT_RUNTIME


# ------------------------------------------------------------------------------------------ record


def _recording(run, *args) -> int:
    """record and review: a ValueError is a bad argument (exit 2); a RecordError one line and exit 1, what was kept
    stays."""
    from streamd.record import RecordError

    try:
        return run(*args)
    except ValueError as err:
        raise UserError(str(err)) from None
    except RecordError as err:
        print(f"streamd: {_one_line(err)}", file=sys.stderr)
        return EXIT_RUNTIME


def cmd_record(args) -> int:
    from streamd.record import run

    return _recording(run, args)


def cmd_review(args) -> int:
    from streamd.clips import clips_dir
    from streamd.review import run

    config = read_config(args.config)[0]  # where the service keeps its clips, and how much after each event
    folder = Path(args.clips).expanduser() if args.clips else clips_dir(config)
    return _recording(run, args, folder, config.clips.post_roll_s, *_labels_known(config))


def _labels_known(config) -> tuple[set[str], set[str]]:
    """The keywords and tags of the config's models (review tells a word typed from a sound by them); where a model
    cannot be read, the config's own keywords: and tags: stand in for its labels."""
    from streamd.contract import KIND_KEYWORD, KIND_TAG, ContractError
    from streamd.model import load_model

    keywords, tags = {k.name for k in config.keywords}, {t.name for t in config.tags}
    for mc in config.models:
        try:
            info = load_model(config.resolve(mc.path)).info
        except ContractError:
            continue
        keywords |= set(info.names_of_kind(KIND_KEYWORD))
        tags |= set(info.names_of_kind(KIND_TAG))
    return keywords, tags


# ------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamd", description="Always-on keyword spotting and sound tagging; events on ZeroMQ.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the service")
    run.add_argument("--config", help="config file (default: $STREAMD_CONFIG, ./config.yaml, /etc/streamd/config.yaml)")
    run.add_argument("--source", help="replace the configured inputs with one: mic, file:PATH or stdin[:RATE_HZ[:CHANNELS]]")
    run.add_argument("--fast", action="store_true", help="read a file or stdin as fast as inference goes")
    run.add_argument("--wait-for-subscriber", type=float, default=0.0, metavar="S",
                     help="hold the audio until a subscriber connects, at most S seconds")
    run.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    run.set_defaults(func=cmd_run)

    listen = sub.add_parser("listen", help="print events from a running service, one JSON object per line")
    listen.add_argument("--endpoint", help="bus endpoint (default: the config's)")
    listen.add_argument("--config")
    listen.add_argument("--topic", action="append", help="topic prefix, e.g. keyword. or tag.start.dog (repeatable)")
    listen.add_argument("--scores", action="store_true", help="also show live scores (needs bus.scores: true)")
    listen.add_argument("--timeout", type=float, default=0.0,
                        help="exit after this many seconds without an event of its topics")
    listen.add_argument("--exec", dest="exec_command", metavar="CMD",
                        help="run CMD with /bin/sh for each event, one at a time: the event's JSON on stdin, "
                             "STREAMD_LABEL, STREAMD_SCORE, STREAMD_TOPIC, ... in its environment; a sound that "
                             "several models hear once, at the first model's tag start and the last one's end")
    listen.add_argument("--every-model", action="store_true",
                        help="with --exec: run CMD for every model's tag events, not once per sound")
    listen.set_defaults(func=cmd_listen)

    scan = sub.add_parser("scan", help="run the pipeline over files as fast as possible")
    scan.add_argument("files", nargs="+", metavar="FILE")
    scan.add_argument("--config")
    scan.add_argument("--json", action="store_true", help="print only the events, exactly as the bus carries them")
    scan.add_argument("--top", type=int, default=3, help="labels per hop line")
    scan.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    scan.set_defaults(func=cmd_scan)

    check = sub.add_parser("check", help="validate the config and its models; exit 0 or 2")
    check.add_argument("--config")
    check.set_defaults(func=cmd_check)

    devices = sub.add_parser("devices", help="list audio input devices")
    devices.set_defaults(func=cmd_devices)

    record = sub.add_parser("record", help="record your own clips of a word or sound for training (manifest.csv)",
                            description="Record takes of a word or a sound (or a long background) from a microphone "
                                        "into FOLDER, laid out as training's recordings: key reads them.")
    record.add_argument("label", help='the word ("hey kitchen"), sound (cuckoo) or background (television)')
    record.add_argument("--out", required=True, metavar="FOLDER", help="recordings folder (its manifest.csv grows)")
    record.add_argument("--kind", choices=("word", "sound", "background"), default="word",
                        help="word: kws/<label>/, sound: tags/<label>/, background: one long noise/<label>-N.wav")
    record.add_argument("--count", type=int, default=20, help="takes to keep (word, sound)")
    record.add_argument("--seconds", type=float, default=2.0,
                        help="length of each take (s); of the background recording, e.g. 600")
    record.add_argument("--pause-s", type=float, default=1.0, help="pause before each prompt (s)")
    record.add_argument("--speaker", default="", help="who speaks, for the manifest's speaker column (default none)")
    record.add_argument("--device", help="input device index or name substring (default: the system default)")
    record.add_argument("--from", dest="source", metavar="FOLDER",
                        help="take the WAV/FLAC/OGG files of FOLDER instead of the microphone (e.g. detection clips "
                             "you listened to), each kept whole; with --kind background laid end to end")
    record.set_defaults(func=cmd_record)

    review = sub.add_parser("review", help="listen to the detection clips and keep each as what it was (manifest.csv)",
                            description="Play each detection clip not yet reviewed and ask what it was; keep it in "
                                        "FOLDER, laid out as training's recordings: key reads them (a positive of "
                                        "the keyword, another word, other speech, or a background).")
    review.add_argument("clips", nargs="?", metavar="CLIPS",
                        help="the detection clips folder (default: the config's clips.dir)")
    review.add_argument("--out", required=True, metavar="FOLDER",
                        help="recordings folder (its manifest.csv grows; reviewed.csv says which clips were answered)")
    review.add_argument("--config", help="config whose clips.dir to review (found as `streamd run` finds it)")
    review.add_argument("--speech-label", default="other speech",
                        help="label of a keyword's clips answered n (someone said something else): negative words")
    review.add_argument("--sound-label", default="other sound",
                        help="label of a tag's clips answered n: a sound that is none of the tags")
    review.add_argument("--background-label", default="household",
                        help="label of the clips answered b (no one spoke; the room alone): one background of them "
                        "end to end")
    review.add_argument("--speaker", default="", help="who speaks in the words kept, for the speaker column")
    review.add_argument("--device", help="output device index or name substring (default: the system default)")
    review.add_argument("--no-play", action="store_true", help="do not play the clips (answer from the events)")
    review.set_defaults(func=cmd_review)

    ctl = sub.add_parser("ctl", help="send a control command to a running service")
    ctl.add_argument("command", choices=("status", "reload", "enable", "disable", "set_threshold"))
    ctl.add_argument("name", nargs="?")
    ctl.add_argument("threshold", nargs="?", type=float)
    ctl.add_argument("--endpoint")
    ctl.add_argument("--config")
    ctl.add_argument("--timeout", type=float, default=2.0)
    ctl.set_defaults(func=cmd_ctl)

    # listed here for `streamd --help`; main() hands everything after "bench" to streamd.bench untouched
    sub.add_parser("bench", help="benchmark the models and the service (see streamd bench --help)", add_help=False)
    return parser


def cmd_bench(argv: list[str]) -> int:
    from streamd.bench import main as bench_main

    return bench_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    bench_argv = argv[1:] if argv[:1] == ["bench"] else None
    args = build_parser().parse_args(argv) if bench_argv is None else None
    from streamd.ringsource import SourceError

    try:
        if bench_argv is not None:
            return cmd_bench(bench_argv)
        return args.func(args)
    except (ConfigError, ContractError, SourceError, UserError) as err:
        print(f"streamd: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # `streamd listen | head`
        return EXIT_OK
    except Exception as err:
        log.debug("failure", exc_info=True)
        print(f"streamd: runtime failure: {type(err).__name__}: {_one_line(err)}", file=sys.stderr)
        return EXIT_RUNTIME


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
