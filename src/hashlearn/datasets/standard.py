"""The standard benchmarks of the hashing literature: where their files come from, what they hold.

MNIST and Fashion-MNIST come as four gzipped IDX files (read by :mod:`hashlearn.datasets.mnist`),
CIFAR-10 as one tar.gz of pickled batches (read by :mod:`hashlearn.datasets.cifar10`). ``SOURCES``
lists every file with its download URLs and its published size and SHA-256, which
:func:`hashlearn.datasets.download.fetch_files` checks before a file is parsed. The class names
and the ``default_split`` the three share are here too.
"""

from __future__ import annotations

from hashlearn.datasets.download import RemoteFile

MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # mirror first: the original often refuses
    "http://yann.lecun.com/exdb/mnist/",
)
FASHION_MNIST_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

# The four files of an IDX dataset (MNIST, Fashion-MNIST), in the order they are listed.
IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _idx_files(bases: tuple[str, ...], table: dict[str, tuple[int, str]]) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(name, table[name][0], table[name][1], tuple(base + name for base in bases))
        for name in IDX_NAMES
    )


# Sizes and SHA-256 as listed by tensorflow/datasets (url_checksums/mnist.txt, fashion_mnist.txt;
# cifar10.csv for the python archive). The SHA-256 values match torchvision's prototype
# datasets/_builtin/mnist.py (_CHECKSUMS) and keras' datasets/cifar10.py (file_hash); the sizes
# match the byte counts TensorFlow's MNIST reader prints and Fashion-MNIST's README table, and
# CIFAR-10's 170,498,071 bytes the count printed by TF-slim's download_and_convert_cifar10.
SOURCES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": _idx_files(
        MNIST_URLS,
        {
            "train-images-idx3-ubyte.gz": (
                9912422,
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            "train-labels-idx1-ubyte.gz": (
                28881,
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            "t10k-images-idx3-ubyte.gz": (
                1648877,
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            "t10k-labels-idx1-ubyte.gz": (
                4542,
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        },
    ),
    "fashion-mnist": _idx_files(
        FASHION_MNIST_URLS,
        {
            "train-images-idx3-ubyte.gz": (
                26421880,
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            ),
            "train-labels-idx1-ubyte.gz": (
                29515,
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            ),
            "t10k-images-idx3-ubyte.gz": (
                4422102,
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            ),
            "t10k-labels-idx1-ubyte.gz": (
                5148,
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            ),
        },
    ),
    "cifar10": (
        RemoteFile(
            "cifar-10-python.tar.gz",
            170498071,
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            (CIFAR10_URL,),
        ),
    ),
}

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# ``default_split`` of the three: 1,000 stratified queries, 5,000 training images (+500 for
# validation) drawn from the database of every other image.
STANDARD_SPLIT = {"n_query": 1000, "n_train": 5000, "n_validation": 500}
