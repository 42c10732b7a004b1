"""Sketches and submissions: /sketch paints an uploaded drawing as a face, /submit offers a picture's faces as
training data. Both read an upload under the drawing limits, on threads of their own."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import Callable, TypeVar

from PIL import Image

from bot import pictures
from bot.core import Attachment, Buttons, Call, Core, Reply, Upload, Who
from bot.handlers.curation import tag_card, tags_text
from bot.handlers.drawing import Job, chosen, pair_text, picture_meta, run_job
from bot.registry import MAX_SEED, Colour, Picture, Spec, seed
from bot.store import NewPicture, NewUpload
from generator.face_crop import crop_faces, read_picture
from generator.requests import SketchRequest
from generator.sampler import sketch_tags
from generator.sketch_input import SketchRejected, UploadLimits, check_size, normalise_sketch, suffix_of
from generator.sketch_input import Sketch as Drawing
from generator.tags import EYE_COLORS, HAIR_COLORS
from training.near_duplicates import FaceHashIndex, face_hash
from training.tag_predictor import ColourGuess, TagGuess, complete_tags, load_tagger

# A bare /sketch: how to send a drawing, per platform
SKETCH_HOWTO = {
    "telegram": "Send me your drawing as a photo (or an image file) with the caption /sketch — add colours "
                "if you like: /sketch pink blue. Or reply /sketch to a message that has a picture.",
    "discord": "Attach your drawing to /sketch in the image option, and pick colours if you like.",
    "web": "Draw on the pad beside the chat and press Convert, or drop a picture of your drawing on it; "
           "colours go in the box next to Convert.",
}
SKETCH_TIPS = "Dark lines on light paper work best (light on dark is fine too); one face filling the picture."
# A bare /submit: how to send a picture, per platform
SUBMIT_HOWTO = {
    "telegram": "Send me a picture as a photo (or an image file) with the caption /submit — add its colours if you "
                "know them: /submit pink blue. Or reply /submit to a message that has a picture.",
    "discord": "Attach the picture to /submit in the image option, and pick its colours if you know them.",
    "web": "Drop the picture on the box beside the chat (or choose it there) with \"as a face for the training "
           "set\" picked; its colours, if you know them, go in the box next to Convert.",
}
SUBMIT_FACES = 4  # faces of one picture submitted at most
SUBMIT_TIPS = "Anime faces facing the camera work best; I cut each face out and shrink it to 64x64."
DECODE_TIMEOUT_S = 20.0  # an upload not decoded by then is refused (the largest allowed decodes in about 1 s)
SLOW_UPLOAD = "That picture took too long to read — please send a smaller PNG or JPEG."
NEAR_DUPLICATES = "near-duplicates"  # the lease held while a submission is checked against the training set
NEAR_DUPLICATES_TTL_S = 120.0  # how long a process that died holding it keeps other /submit waiting
Decoded = TypeVar("Decoded")  # what an upload decodes to: a sketch, or a picture to cut faces from


@dataclass(frozen=True)
class Sketch:
    """Paint an uploaded drawing as a face; the upload travels beside the command (``Call.upload``)."""
    hair: int | None = None  # None = drawn from the seed
    eye: int | None = None
    seed: int | None = None  # None = a random seed


@dataclass(frozen=True)
class Submit:
    """Offer a picture's face(s) as training data; the upload travels beside the command, as for Sketch."""
    hair: int | None = None  # None = read off the face by the evaluation classifier
    eye: int | None = None


async def sketch(core: Core, call: Call) -> Reply:
    """Read the upload (a refusal says what is wrong with it), keep it, then paint it like any drawing."""
    who, command, upload = call.who, call.command, call.upload
    if not core.generator.serves("sketch"):
        return Reply("I can't paint drawings right now: no sketch model is loaded. Faces still work: /waifu.",
                     refusal=True)
    if upload is None:
        return Reply(f"{SKETCH_HOWTO.get(who.platform, SKETCH_HOWTO['telegram'])}\n{SKETCH_TIPS}", refusal=True)
    read = await read_upload(core, who, upload, normalise_sketch, SKETCH_TIPS)
    if isinstance(read, Reply):
        return read
    data, drawing = read
    base = await picture_meta(core, who)
    upload_id = await core.store.add_upload(data, drawing.suffix, NewUpload(base["user_id"], who.platform,
                                                                            who.chat_id, upload.filename))
    return await run_job(core, who, _sketch_job(core, command, drawing, {**base, "upload_id": upload_id}),
                         call.on_queued)


def _sketch_job(core: Core, command: Sketch, drawing: Drawing, base: dict) -> Job:
    """The drawing as read and the face painted from it, side by side; colours not given come from the seed."""
    first = chosen(core, command.seed, MAX_SEED + 1)
    hair, eye = sketch_tags(first, command.hair, command.eye)
    pair, size = pair_text(hair, eye), core.display_size
    picture = partial(NewPicture, "sketch", **base, tags=pair, hair=hair, eye=eye, seed=first)
    again = f"/sketch {HAIR_COLORS[hair]} {EYE_COLORS[eye]} seed:{first} with the same drawing"
    return Job(SketchRequest(drawing.pixels, hair, eye, first, size),
               partial(pictures.beside_png, drawing.to_image(), size=size), ".png", picture,
               f"your sketch → {pair} · seed {first}", again, 1, tuple(drawing.notes()))


async def read_upload(core: Core, who: Who, upload: Upload, decode: Callable[[bytes, UploadLimits], Decoded],
                      tips: str) -> tuple[bytes, Decoded] | Reply:
    """Take the user's drawing turn, then fetch and decode the upload (off the loop): (bytes, decoded), or
    the refusal to answer with when the limits or the upload say no (the turn is given back then)."""
    refusal = await core.limits.take(who.user_key, who.chat_key)
    if refusal:
        return Reply(refusal, refusal=True)
    try:
        if upload.size is not None:
            check_size(upload.size, core.uploads)  # before downloading it
        data = await upload.fetch()
        return data, await _decoded(core, decode, data)
    except SketchRejected as e:
        await core.limits.give_back(who.user_key, who.chat_key)
        return Reply(f"{e}\n{tips}", refusal=True)


async def _decoded(core: Core, decode: Callable[[bytes, UploadLimits], Decoded], data: bytes) -> Decoded:
    """``decode(data, limits)`` on the upload threads; SketchRejected when it takes over DECODE_TIMEOUT_S (the
    thread then finishes on its own: only formats whose decoding ends are read)."""
    decoding = asyncio.get_running_loop().run_in_executor(core.decoders, decode, data, core.uploads)
    try:
        return await asyncio.wait_for(decoding, DECODE_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise SketchRejected(SLOW_UPLOAD) from None


async def submit(core: Core, call: Call) -> Reply:
    """Cut the picture's faces out (the whole picture when none is found; one with nothing drawn in it is
    refused as it is read), leave out those the training set has (same pixels, or a near-duplicate), tag the
    rest (colours given are kept, missing ones read by the evaluation classifier) and queue each as a pending
    item, shown with vote buttons and a tag card."""
    who, command, upload = call.who, call.command, call.upload
    if upload is None:
        return Reply(f"{SUBMIT_HOWTO.get(who.platform, SUBMIT_HOWTO['telegram'])}\n{SUBMIT_TIPS}", refusal=True)
    read = await read_upload(core, who, upload, read_picture, SUBMIT_TIPS)
    if isinstance(read, Reply):
        return read
    data, (picture, animated) = read
    crops = await asyncio.to_thread(crop_faces, picture, SUBMIT_FACES)
    user = await core.store.user(who.platform, who.user_id, who.user_name)
    notes = [f"({crops.note.capitalize()}.)"] if crops.note else []
    if animated:
        notes.append("(Your image is animated; I used its first frame.)")
    replies: list[Reply] = []
    upload_id = None
    async with core.store.leases.held(NEAR_DUPLICATES, NEAR_DUPLICATES_TTL_S):  # one submission at a time
        index = await asyncio.to_thread(FaceHashIndex.of_faces, core.store.data_dir, await core.store.faces())
        for n, crop in enumerate(crops.crops, 1):
            which = f"Face {n}" if len(crops.crops) > 1 else "That face"
            h = face_hash(crop.image)
            if same := index.find(h):
                notes.append(f"{which} is already in the training set (item #{same[0].image_id}, or one very "
                             "like it), so I left it out.")
                continue
            guess = await _guess_tags(core, crop.image, command)
            if upload_id is None:
                upload_id = await core.store.add_upload(data, suffix_of(picture.format or "?"),
                                                        NewUpload(user, who.platform, who.chat_id, upload.filename))
            shown = await asyncio.to_thread(pictures.enlarged_png, crop.image, core.display_size)
            hair, eye = guess.hair.index, guess.eye.index
            meta = NewPicture("submission", who.platform, who.chat_id, user, tags_text(hair, eye), "",
                              hair=hair, eye=eye, upload_id=upload_id)
            added = await core.store.add_submission(crop.image, shown, meta, who.user_key, upload.filename)
            if added is None:
                notes.append(f"{which} is already in the training set, so I left it out.")
                continue
            index.add(added[0], h)
            replies.append(Reply(submission_text(added[0], guess), [Attachment(f"submission-{added[0]}.png", shown)],
                                 Buttons(added[1], 0, 0)))
            replies.append(tag_card(await core.store.item(added[0])))
    if not replies:
        await core.limits.give_back(who.user_key, who.chat_key)
        return Reply("\n".join(notes), refusal=True)
    first = replies[0]
    return dataclasses.replace(first, text="\n".join([first.text, *notes]), more=tuple(replies[1:]))


async def _guess_tags(core: Core, face: Image.Image, command: Submit) -> TagGuess:
    if core.tagger is None:
        core.tagger = await asyncio.to_thread(load_tagger)
    return await asyncio.to_thread(complete_tags, core.tagger, face, command.hair, command.eye)


def submission_text(item_id: int, guess: TagGuess) -> str:
    """The answer to one submitted face: its tags, what the classifier read and how sure it was."""
    lines = [f"Submission #{item_id}: {tags_text(guess.hair.index, guess.eye.index)}."]
    if guess.text():
        readings = [f"{what}: {readings_text(g, names)}" for g, names, what in
                    ((guess.hair, HAIR_COLORS, "hair"), (guess.eye, EYE_COLORS, "eyes")) if g.predicted]
        lines.append(f"{guess.text()} — my readings: {'; '.join(readings)}.")
    lines.append("It joins the training data when the votes say so (👍/👎) or an admin approves it; wrong colours "
                 "can be fixed with the buttons of the next message.")
    return "\n".join(lines)


def readings_text(guess: ColourGuess, names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"{names[i]} {p:.2f}" for i, p in guess.top)


IMAGE_HELP = "your drawing: dark lines on light paper (or light on dark), one face"
SPECS = (
    Spec("sketch", "paint your drawing as a face (send a picture with it)", sketch, type=Sketch, drawing=True, args=(
        Picture("image", IMAGE_HELP), Colour("hair", "hair", "hair colour (from the seed if empty)"),
        Colour("eye", "eye", "eye colour (from the seed if empty)"),
        seed(help="the same drawing and seed paint the same face")),
        descriptions={"ko": "내 그림을 얼굴로 칠합니다 (그림을 함께 보내세요)", "ja": "あなたの絵を顔に塗ります（画像を添えて）",
                      "zh-CN": "把你的画涂成一张脸（附上图片）", "fr": "peint votre dessin en visage (joignez une image)"}),
    Spec("submit", "offer a picture's face as training data (send a picture with it)", submit, type=Submit, args=(
        Picture("image", "a picture with one or more anime faces"),
        Colour("hair", "hair", "its hair colour (read off the face if empty)"),
        Colour("eye", "eye", "its eye colour (read off the face if empty)"))),
)
