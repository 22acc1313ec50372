"""InterFaceGAN boundaries: codes and binary labels -> a unit editing direction."""

from typing import Annotated, Sequence

import numpy
from numpy.typing import NDArray


class Boundary:
    """A hyperplane normal . x + offset = 0; label 1 on the positive side."""

    @property
    def normal(self) -> NDArray[numpy.float32]:
        """float32 [dim], unit length: the editing direction"""

    @property
    def offset(self) -> float:
        """signed distance of the plane from the origin's side"""

    @property
    def train_accuracy(self) -> float:
        """fraction of the training codes on their label's side"""

    def score(self, codes: Annotated[NDArray, dict(writable=False)]) -> NDArray[numpy.float64]:
        """float64 [N]: signed distances normal . x + offset of codes [N, dim]"""

    def __repr__(self) -> str: ...

def fit(codes: Annotated[NDArray, dict(writable=False)], labels: Annotated[NDArray, dict(writable=False)], *, method: str = 'svm', c: float | None = None, max_epochs: int | None = None, seed: int | None = None, l2: float | None = None, max_iterations: int | None = None, tolerance: float | None = None) -> Boundary:
    """
    A separating hyperplane of codes float32 [N, dim] with labels [N] (integer or bool; 0/1 or
    -1/+1, both classes present).

    method='svm': linear SVM, 1/2 |w|^2 + c * sum of hinge losses, the bias a weight of a
    constant feature (c=1, max_epochs=1000, tolerance=1e-4, seed=0: the order of the coordinate
    sweeps). method='logistic': mean log-loss + l2/2 |w|^2, bias unpenalised, Newton's method
    (l2=1e-3, max_iterations=50, tolerance=1e-10). None = the library's default; an option of the
    other method is a ValueError.
    """

def from_scores(codes: Annotated[NDArray, dict(writable=False)], scores: Annotated[NDArray, dict(writable=False)], *, ratio: float = 0.02, c: float | None = None, max_epochs: int | None = None, tolerance: float | None = None, seed: int | None = None) -> Boundary:
    """
    The paper's recipe: label the `ratio` highest-scoring codes 1 and the `ratio` lowest 0
    (scores float32 [N]), drop the rest, fit the linear SVM (options as fit's).
    """

def conditional(primal: Annotated[NDArray, dict(writable=False)], conditions: Sequence[Annotated[NDArray, dict(writable=False)]]) -> NDArray[numpy.float32]:
    """
    The unit direction `primal` with its component in the span of `conditions` removed: moving
    along it leaves every condition's score unchanged (float32 [dim] each).
    """
