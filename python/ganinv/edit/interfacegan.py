"""InterFaceGAN (Shen, Gu, Tang, Zhou, CVPR 2020): the unit normal of a hyperplane that separates
codes with and without a binary attribute is an editing direction.

    b = ganinv.edit.interfacegan.fit(ws[:, 0], labels)          # linear SVM; method="logistic"
    edited = ganinv.edit.apply_direction(ws, b.normal, 3.0)
"""

from .._ganinv.edit.interfacegan import Boundary, conditional, fit, from_scores

__all__ = ["Boundary", "conditional", "fit", "from_scores"]
