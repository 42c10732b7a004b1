"""Tag completion for submitted faces: given colours are kept, missing ones read off the face, top-3 readings."""

import numpy as np
import pytest
import torch
from conftest import draw_face

from generator.tags import EYE_COLORS, HAIR_COLORS, N_EYE, N_HAIR, eye_index, hair_index
from training.tag_predictor import TOP, ColourGuess, complete_tags, load_tagger, tag_probabilities


@pytest.fixture(scope="module")
def tagger():
    return load_tagger()


def check_readings(guess: ColourGuess, n_colours: int) -> None:
    indices = [i for i, _ in guess.top]
    probs = [p for _, p in guess.top]
    assert len(guess.top) == TOP and len(set(indices)) == TOP and all(0 <= i < n_colours for i in indices)
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs) and sum(probs) <= 1 + 1e-6
    if guess.index in indices:
        assert guess.probability == pytest.approx(dict(guess.top)[guess.index])
    else:
        assert guess.probability <= probs[-1] + 1e-6


def test_missing_colours_are_predicted(tagger):
    guess = complete_tags(tagger, draw_face("pink", "blue", 0))
    for g, n in ((guess.hair, N_HAIR), (guess.eye, N_EYE)):
        check_readings(g, n)
        assert g.predicted and g.index == g.top[0][0]
    assert guess.text() == (f"I think: {HAIR_COLORS[guess.hair.index]} hair ({guess.hair.probability:.2f}), "
                            f"{EYE_COLORS[guess.eye.index]} eyes ({guess.eye.probability:.2f})")


@pytest.mark.parametrize("hair, eye", [("pink", None), (None, "blue"), ("pink", "blue")])
def test_given_colours_are_kept(tagger, hair, eye):
    face = draw_face("pink", "blue", 1)
    given_hair = None if hair is None else hair_index(hair)
    given_eye = None if eye is None else eye_index(eye)
    guess = complete_tags(tagger, face, given_hair, given_eye)
    full = complete_tags(tagger, face)
    for g, given, alone, n in ((guess.hair, given_hair, full.hair, N_HAIR), (guess.eye, given_eye, full.eye, N_EYE)):
        check_readings(g, n)
        assert g.top == alone.top  # the readings do not depend on what was given
        if given is None:
            assert g == alone
        else:
            assert g.index == given and not g.predicted
    assert ("hair" in guess.text()) == (hair is None) and ("eyes" in guess.text()) == (eye is None)


def test_probabilities_are_distributions(tagger):
    faces = torch.stack([torch.from_numpy(np.array(draw_face("aqua", "purple", s))).permute(2, 0, 1) for s in range(3)])
    hair, eye = tag_probabilities(tagger, faces)
    assert hair.shape == (3, N_HAIR) and eye.shape == (3, N_EYE)
    assert torch.allclose(hair.sum(1), torch.ones(3)) and torch.allclose(eye.sum(1), torch.ones(3))


def test_bad_input_is_refused(tagger):
    with pytest.raises(ValueError, match="64x64"):
        complete_tags(tagger, draw_face("pink", "blue", 0, size=128))
    with pytest.raises(ValueError, match="colour index 12"):
        complete_tags(tagger, draw_face("pink", "blue", 0), hair=12)
