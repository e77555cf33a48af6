"""The embedded default dataset: procedural, weakly labelled images written in the PASCAL VOC layout.

Real datasets and ImageNet weights cannot be downloaded on every machine, so the default
experiment runs on images drawn here, with numpy only (Pillow writes the files). Each image
holds what WILDCAT (Durand et al., CVPR 2017) is about (details and reasons: docs/synthetic.md):

* **Modalities** (why ``M > 1`` maps per class, Section 3.2): an object of class ``c`` shows
  either its *emblem* part alone (modality 0, ``"single"``) or its *base* and *mark* parts side
  by side (modality 1, ``"pair"``). The three parts of a class differ in shape, texture and colour.
* **Negative evidence** (why ``k-`` and ``alpha``, Section 3.3): for the first
  ``num_shared_pairs`` pairs of classes ``(Y, X) = (2j, 2j + 1)``, the base of ``X`` *is* the
  emblem of ``Y``. The emblem of ``Y`` alone is a ``Y``; next to the mark of ``X`` it is an ``X``
  and not a ``Y``: that mark is evidence against ``Y``.
* **Localization**: objects of 10-32% of the image side, at random places and scales, 1-3 per
  image (multi-label), on a textured background with distractor shapes that belong to no class.
  Boxes and masks are exact: a box is the bounding box of its object's visible mask pixels.
* **Lone parts** (the difficulty knob): a base or mark drawn alone is *not* an object.

Every image is drawn from its own random stream, ``SeedSequence(seed, spawn_key=(split, i))``,
so an image does not depend on the order of generation nor on the size of the other splits
(growing ``num_train`` keeps the test set). The look of the classes (which part has which
shape, texture, colour) is fixed by :data:`GENERATOR_VERSION`, not by the seed.

One job per module:

* :mod:`~wildcat.data.synthetic.spec`: the options (:class:`SyntheticSpec`), their checks and
  the fixed tables (class names, shapes, textures, colours, splits, modalities);
* :mod:`~wildcat.data.synthetic.design`: which look each class part has (:func:`class_design`);
* :mod:`~wildcat.data.synthetic.render`: drawing one image in memory (:func:`render_image`);
* :mod:`~wildcat.data.synthetic.writer`: the VOC tree on disk (:func:`make_synthetic`).

The package needs numpy and Pillow only (no torch): ``wildcat make-synthetic`` runs where the
training stack is not installed.
"""

from wildcat.data.synthetic import design, render, spec, writer
from wildcat.data.synthetic.design import *  # noqa: F403
from wildcat.data.synthetic.render import *  # noqa: F403
from wildcat.data.synthetic.spec import *  # noqa: F403
from wildcat.data.synthetic.writer import *  # noqa: F403

__all__ = [*spec.__all__, *design.__all__, *render.__all__, *writer.__all__]
