"""``moebot``: one command with a subcommand per job (``build_parser`` lists them)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from bot.retraining import Retrainer
    from bot.store import Store

DESCRIPTION = ("Anime faces: import a data set, train and judge generators, draw faces and sketches, manage the "
               "served model, and run the chat bot. One subcommand per job; 'moebot SUBCOMMAND --help' shows its "
               "options.")


def cmd_import(args: argparse.Namespace, cfg: Config) -> int:
    from bot.configured_store import with_store
    from training.importer import import_command

    folder = Path(args.path)
    if not folder.is_dir():
        print(f"moebot import: {folder} is not a folder", file=sys.stderr)
        return 2

    async def go(store: Store) -> int:
        print(await import_command(store.db, cfg.storage.data_dir, folder, args.size, progress=not args.quiet))
        return 0
    return with_store(cfg, go)


RESUME_OVERRIDES = ("threads", "device", "clock", "g_cls_weight", "crude_share", "noise")


def train_options(options_cls: type, args: argparse.Namespace, cfg: Config):
    """The options a run trains with: from the command line, or on ``--resume`` as saved in the run folder.

    A resume keeps the recipe as saved, except what a resume may change: the budget, where it runs, and the
    fine-tuning knobs (the classification weight, the crude line-art share) and the sketch encoder's exported
    noise share; changes go to resumes.jsonl."""
    import dataclasses
    import json

    run_dir = Path(args.run)
    fields = {f.name for f in dataclasses.fields(options_cls)}
    if args.resume and (run_dir / "options.json").exists():
        saved = json.loads((run_dir / "options.json").read_text())
        overrides = {k: getattr(args, k) for k in RESUME_OVERRIDES if k in fields and getattr(args, k) is not None}
        # the run continues where --run says: a copied run folder resumes in the copy, not in the original
        opts = options_cls(**{**saved, **overrides, "run": str(run_dir), "steps": args.steps, "minutes": args.minutes})
        with open(run_dir / "resumes.jsonl", "a") as f:
            f.write(json.dumps({"time": time.time(), "steps": args.steps, "minutes": args.minutes, **overrides}) + "\n")
        return opts
    given = {k: getattr(args, k) for k in fields if getattr(args, k, None) is not None}
    if "face" in fields:  # the sketch encoder: against the face model that serves now, unless told
        from generator.active_model import read_active
        active = read_active(cfg.storage.data_dir, "face")
        given["face"] = args.face or (str(active.weights) if active else cfg.generator.weights)
    data = {"data": str(args.data or cfg.storage.data_dir)} if "data" in fields else {}  # generated pairs need none
    return options_cls(**{**given, **data, "run": str(run_dir)})


def cmd_train(args: argparse.Namespace, cfg: Config) -> int:
    if args.model == "tagger":
        return cmd_train_tagger(args, cfg)
    if args.model == "cyclegan":
        from training.train_cyclegan import CycleGANOptions as options_cls, training_loop
        if not args.doodles and not args.resume:
            print("moebot train cyclegan: give --doodles FILE.npy (QuickDraw bitmaps)", file=sys.stderr)
            return 2
    elif args.model == "upscaler":
        from training.train_upscaler import UpscalerOptions as options_cls, training_loop
    elif args.model == "sketch-encoder":
        from training.train_sketch_encoder import SketchEncoderOptions as options_cls, training_loop
    else:
        from training.train_acgan import TrainOptions as options_cls, training_loop

    opts = train_options(options_cls, args, cfg)
    if opts.steps is None and opts.minutes is None:
        print("moebot train: give --steps N or --minutes M", file=sys.stderr)
        return 2
    try:
        out = training_loop(opts, resume=args.resume, progress=not args.quiet)
    except (FileExistsError, ValueError, FloatingPointError) as e:
        print(f"moebot train: {e}", file=sys.stderr)
        return 1
    print(f"weights: {out}")
    return 0


def cmd_runstate(args: argparse.Namespace, cfg: Config) -> int:
    """Carry a long training run between machines: its resumable state packed small enough to commit."""
    from training.packed_runs import pack, unpack

    try:
        if args.action == "pack":
            out = pack(args.source, args.dest)
            print(f"packed {args.source} into {out} ({out.stat().st_size / 1e6:.1f} MB)")
        else:
            unpack(args.source, args.dest)
            print(f"unpacked {args.source} into {args.dest}; continue with: moebot train ... --run {args.dest} --resume")
    except (FileNotFoundError, FileExistsError) as e:
        print(f"moebot runstate: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_train_tagger(args: argparse.Namespace, cfg: Config) -> int:
    from training.train_tagger import TaggerOptions, train_tagger

    opts = TaggerOptions(data=str(args.data or cfg.storage.data_dir), run=args.run,
                         **({"epochs": args.epochs} if args.epochs else {}),
                         **({"threads": args.threads} if args.threads else {}))
    try:
        out = train_tagger(opts, progress=not args.quiet)
    except (FileExistsError, ValueError) as e:
        print(f"moebot train: {e}", file=sys.stderr)
        return 1
    print(f"tagger weights: {out}")
    return 0


def cmd_sample(args: argparse.Namespace, cfg: Config) -> int:
    from bot import colors
    from bot.commands import colour
    from generator import sample_files
    from generator.sampler import FaceSampler

    out = Path(args.out)
    try:  # colour words as /waifu reads them (a typo gets "did you mean"), as the model's names
        hair, eye, hair2, eye2 = (colors.names(part)[colour(word, part)] if word else None for word, part in
                                  ((args.hair, "hair"), (args.eye, "eye"), (args.hair2, "hair"), (args.eye2, "eye")))
        sampler = FaceSampler.load(args.weights or cfg.generator.weights or None, cfg.generator.device)
        if args.upscaler:
            sampler.with_upscaler(args.upscaler)
        args.size = args.size or sampler.face_px
        if args.mode:
            path = sample_files.write_mode(sampler, out, args.mode, hair, eye, args.n, args.seed,
                                           args.size, hair2, eye2, args.seed2, args.frames)
            print(f"wrote {path} (model {sampler.version})")
            return 0
        if args.per_tag:
            count = sample_files.write_per_tag(sampler, out, args.per_tag, args.seed, args.size)
        else:
            count = sample_files.write_faces(sampler, out, hair, eye, args.n, args.seed, args.size)
    except (ValueError, FileNotFoundError) as e:
        print(f"moebot sample: {e}", file=sys.stderr)
        return 2
    print(f"wrote {count} faces to {out} (model {sampler.version})")
    return 0


def cmd_sketch(args: argparse.Namespace, cfg: Config) -> int:
    """Paint one drawing as a face: the upload rules of /sketch, colours parsed as /waifu parses them."""
    import torch

    from bot.commands import CommandError, colour
    from generator.images import to_pil
    from generator.sampler import SketchSampler, sketch_tags, sketch_weights
    from generator.sketch_input import SketchRejected, normalise_sketch
    from generator.tags import EYE_COLORS, HAIR_COLORS

    try:
        hair = colour(args.hair, "hair") if args.hair else None
        eye = colour(args.eye, "eye") if args.eye else None
        sketch = normalise_sketch(Path(args.input).read_bytes(), cfg.uploads)
        sampler = SketchSampler.load(args.weights or sketch_weights(cfg.generator.sketch_weights,
                                                                    cfg.generator.sketch_mode), cfg.generator.device)
    except (CommandError, SketchRejected, OSError, ValueError) as e:
        print(f"moebot sketch: {args.input}: {e}" if isinstance(e, SketchRejected) else f"moebot sketch: {e}",
              file=sys.stderr)
        return 2
    hair, eye = sketch_tags(args.seed, hair, eye)
    face = sampler.faces(torch.from_numpy(sketch.pixels)[None, None], [hair], [eye], [args.seed])[0]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    to_pil(face, args.size).save(out)
    print(" ".join([f"wrote {out}: {HAIR_COLORS[hair]} hair, {EYE_COLORS[eye]} eyes, seed {args.seed} "
                    f"(model {sampler.version}).", *sketch.notes()]))
    return 0


def cmd_evaluate(args: argparse.Namespace, cfg: Config) -> int:
    import json

    from generator.sampler import SketchSampler
    from generator.weights import read_metadata
    from training.evaluate import evaluate_weights
    from training.sketch_metrics import evaluate_sketch_weights

    weights, data_dir = args.weights or cfg.generator.weights or None, args.data or cfg.storage.data_dir
    try:
        if weights and read_metadata(weights).get("config", {}).get("arch") in SketchSampler.archs:
            if not args.doodles:
                print("moebot evaluate: a sketch model needs --doodles FILE.npy", file=sys.stderr)
                return 2
            result = evaluate_sketch_weights(weights, data_dir, args.doodles, tagger_path=args.tagger, seed=args.seed)
        else:
            result = evaluate_weights(weights, data_dir, tagger_path=args.tagger, seed=args.seed,
                                      fid_sizes=tuple(args.fid or (64,)) if args.fid is not None else (),
                                      upscaler=args.upscaler, progress=not args.json)
    except (ValueError, ImportError) as e:
        print(f"moebot evaluate: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else result.pop("_table"))
    return 0


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    from bot.runner import run

    return run(cfg, web=args.web)


def cmd_models(args: argparse.Namespace, cfg: Config) -> int:
    from bot.runner import with_retrainer

    return with_retrainer(cfg, lambda retrainer: models_action(args, retrainer))


async def models_action(args: argparse.Namespace, retrainer: Retrainer) -> int:
    if args.action == "promote":
        if not args.target:
            print("moebot models promote: give the weights FILE", file=sys.stderr)
            return 2
        try:
            active = await retrainer.lifecycle.promote_file(Path(args.target), "moebot models promote",
                                                            "promoted by hand (moebot models promote)")
        except (OSError, ValueError) as e:
            print(f"moebot models promote: refused {args.target}: {e}", file=sys.stderr)
            return 1
        print(f"active model is now {active.version} ({active.kind}: {active.weights}); running bots switch within "
              "seconds")
        return 0
    if args.action == "rollback":
        try:
            print(await retrainer.rollback(args.target, "moebot models rollback", args.kind))
        except ValueError as e:
            print(f"moebot models rollback: {e}", file=sys.stderr)
            return 1
        return 0
    for m in await retrainer.models():
        figures = ", ".join(f"{k} {m.metrics[k]:.3f}" for k in ("hair_ratio", "eye_ratio", "diversity_ratio", "fd")
                            if k in m.metrics)
        print(f"{m.version:<22} {m.state:<9} {m.kind:<8} {m.created_at[:16]}  from {m.parent or '-'}  {figures}  "
              f"{m.reason}")
    return 0


def cmd_retrain(args: argparse.Namespace, cfg: Config) -> int:
    """One retraining run now, in a child process as the bot runs it, gate and promotion included."""
    from bot.runner import with_retrainer

    async def go(retrainer: Retrainer) -> int:
        print(await retrainer.start("moebot retrain"))
        outcome = await retrainer.wait()
        if outcome is None:  # another process's run holds the lease
            return 1
        print(outcome.text)
        if outcome.grid:
            print(f"before | after: {outcome.grid}")
        return 0 if outcome.promoted else 1
    return with_retrainer(cfg, go)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="moebot", description=DESCRIPTION)
    p.add_argument("--config", help="path to bot.toml (default: ./bot.toml if present)")
    sub = p.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    imp = sub.add_parser("import", help="import a folder of face images (tags.csv, tags.pickle or untagged)")
    imp.add_argument("path")
    imp.add_argument("--size", type=int, choices=[64, 128], default=64,
                     help="face resolution to store; 128: untagged faces get colours read by the classifier")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_import)

    train = sub.add_parser("train", help="train a model in a run folder (resumable)")
    train.add_argument("model", choices=["acgan", "tagger", "cyclegan", "upscaler", "sketch-encoder"])
    train.add_argument("--data", help="data directory with imported faces (default: [storage] data_dir)")
    train.add_argument("--run", required=True, help="run folder: options, stats, grids, snapshots")
    budget = train.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="train this many steps in total")
    budget.add_argument("--minutes", type=float, help="train this many minutes in total")
    train.add_argument("--resume", action="store_true", help="continue the run in --run from its snapshot")
    train.add_argument("--preset", choices=["default", "face-gan", "face-gan-128", "seed-acgan"])
    train.add_argument("--device", help="auto (CUDA when present), cpu, cuda, cuda:N")
    train.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    train.add_argument("--clock", choices=["wall", "cpu"], help="count --minutes as wall or process CPU time")
    train.add_argument("--g-cls-weight", dest="g_cls_weight", type=float,
                       help="default preset: weight of G's colour-classification loss (lower = more varied faces)")
    train.add_argument("--lr", type=float, help="acgan: G's Adam learning rate (default: the preset's)")
    train.add_argument("--lr-d", dest="lr_d", type=float, help="acgan: D's Adam learning rate (default: the preset's)")
    train.add_argument("--d-warmup", dest="d_warmup", type=int, help="acgan fine-tune: first steps train only D")
    train.add_argument("--g-ramp", type=int, help="acgan fine-tune: then G's rate rises from 0 over these steps")
    for number in ("--batch", "--seed", "--snapshot-every", "--sample-every"):
        train.add_argument(number, type=int)
    train.add_argument("--epochs", type=int, help="tagger: passes over the train split")
    train.add_argument("--doodles", help="cyclegan: QuickDraw doodles .npy, (N, 28, 28) uint8 white on black")
    train.add_argument("--init", help="fine-tune from: acgan, a generator .safetensors; cyclegan, a run's snapshot.pt")
    train.add_argument("--init-d", help="acgan fine-tune: start D from this discriminator .safetensors (else fresh)")
    train.add_argument("--crude-share", dest="crude_share", type=float,
                       help="cyclegan: share of faces painted from crude (doodle-like) line art (default 0.5)")
    train.add_argument("--doodle-cycle-weight", type=float, help="cyclegan: weight of F(G(doodle)) ~ doodle (def. 3)")
    train.add_argument("--fm-weight", type=float, help="cyclegan: feature matching, doodles' faces to real (default 0)")
    train.add_argument("--whole-face-d", action="store_true", default=None, help="cyclegan: D_face scores whole faces")
    train.add_argument("--face", help="sketch-encoder: the face generator's weights (default: the active face "
                       "model, else the bundled one)")
    train.add_argument("--noise", type=float, help="sketch-encoder: share of the seed's latent in the exported "
                       "encoder's latents, 0 (the drawing alone) to 1 (default 0.6)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    runstate = sub.add_parser("runstate", help="pack a training run's resumable state into one small file "
                              "(to commit), or unpack it into a run folder to resume")
    runstate.add_argument("action", choices=["pack", "unpack"])
    runstate.add_argument("source", help="pack: the run folder; unpack: the packed file")
    runstate.add_argument("dest", help="pack: the packed file (.safetensors); unpack: a new run folder")
    runstate.set_defaults(func=cmd_runstate)

    sample = sub.add_parser("sample", help="draw faces, per-tag sets, ACGAN grids or a morph GIF")
    sample.add_argument("--hair", help="hair colour (default: random per face)")
    sample.add_argument("--eye", help="eye colour (default: random per face)")
    sample.add_argument("-n", type=int, default=16, help="number of faces (or grid side for fix-hair-eye)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", required=True, help="output folder (or .gif/.png file for modes)")
    sample.add_argument("--weights", help="generator weights (default: the bundled ones)")
    sample.add_argument("--size", type=int, choices=[64, 128, 256], help="display size (default: the model's own)")
    sample.add_argument("--upscaler", help="2x upscaler weights: draws the 128 px faces (256 px: Lanczos from them)")
    sample.add_argument("--per-tag", dest="per_tag", type=int, help="N faces for each of the 120 tag pairs")
    sample.add_argument("--mode", choices=["fix-noise", "change-hair", "change-eye", "fix-hair-eye", "interpolate"])
    sample.add_argument("--hair2", help="interpolate: end hair colour")
    sample.add_argument("--eye2", help="interpolate: end eye colour")
    sample.add_argument("--seed2", type=int, help="interpolate: end seed (default seed+1)")
    sample.add_argument("--frames", type=int, default=24, help="interpolate: GIF frames")
    sample.set_defaults(func=cmd_sample)

    sketch = sub.add_parser("sketch", help="paint a drawing (dark lines on light, or light on dark) as a face")
    sketch.add_argument("input", help="the drawing: PNG, JPEG, GIF (first frame), WebP, BMP or TIFF")
    sketch.add_argument("--out", required=True, help="the face, as a PNG")
    sketch.add_argument("--hair", help="hair colour, any word /waifu understands (default: from the seed)")
    sketch.add_argument("--eye", help="eye colour (default: from the seed)")
    sketch.add_argument("--seed", type=int, default=0, help="the same drawing and seed paint the same face")
    sketch.add_argument("--size", type=int, choices=[64, 128, 256, 512], help="display size (default: the face's own)")
    sketch.add_argument("--weights", help="sketch model weights, a CycleGAN generator or a sketch encoder (default: "
                        "[generator] sketch_weights, else the bundled ones of [generator] sketch_mode)")
    sketch.set_defaults(func=cmd_sketch)

    ev = sub.add_parser("evaluate", help="judge a generator with the evaluation classifier")
    ev.add_argument("--weights", help="face or sketch generator weights (default: the bundled face generator)")
    ev.add_argument("--data", help="data directory with imported faces (default: [storage] data_dir)")
    ev.add_argument("--tagger", help="evaluation classifier weights (default: the bundled ones)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--fid", type=int, nargs="*", choices=[64, 128], metavar="SIZE",
                    help="also FID and KID (Inception; needs the 'fid' extra) at 64 px, or at the sizes given")
    ev.add_argument("--upscaler", help="face generator: draw its 128 px faces with this 2x upscaler (else Lanczos)")
    ev.add_argument("--doodles", help="sketch generators: QuickDraw doodles .npy (the held-out 200 are converted)")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ev.set_defaults(func=cmd_evaluate)

    models = sub.add_parser("models", help="list the model versions of every kind, promote a weights file, or "
                            "roll back")
    models.add_argument("action", choices=["list", "promote", "rollback"])
    models.add_argument("--kind", default="face",
                        help="rollback without a VERSION: the model kind to roll back, face (default), sketch or "
                             "upscaler")
    models.add_argument("target", nargs="?", metavar="FILE|VERSION",
                        help="promote: the weights (.safetensors) to serve, their kind read from the file; rollback: "
                             "the version to serve again (default: the one of its kind before the active one)")
    models.set_defaults(func=cmd_models)
    retrain = sub.add_parser("retrain", help="fine-tune the active generator on the curated faces now; the gate "
                                             "promotes the result only if it is no worse ([training] in bot.toml)")
    retrain.set_defaults(func=cmd_retrain)

    run = sub.add_parser("run", help="run the chat bot on every platform with a token (DISCORD_TOKEN, TELEGRAM_TOKEN)")
    run.add_argument("--config", default=argparse.SUPPRESS, help="path to bot.toml (default: ./bot.toml if present)")
    run.add_argument("--web", action="store_true",
                     help="also serve the local playground and dashboard ([web] in bot.toml); "
                          "without chat tokens it always does")
    run.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"moebot: configuration error: {e}", file=sys.stderr)
        return 2
    return args.func(args, cfg)


if __name__ == "__main__":
    sys.exit(main())
