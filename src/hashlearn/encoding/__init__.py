"""Image files -> codes: one path for the command line, the search service and batch workers.

Pictures are read and prepared once, the same way everywhere (:mod:`~hashlearn.encoding.images`:
PNG and JPEG checked and decoded, made arrays of the model's input shape;
:class:`ImageEncoder`: a hasher and the image shape it takes), whole folders encoded in batches
(:func:`encode_image_files`), their codes saved with ids and paths
(:mod:`~hashlearn.encoding.codes_file`), and a folder indexed and made ready to serve
(:func:`index_folder`, :func:`prepare_folder`). :func:`describe_file` says what a model, index or
codes file holds (:mod:`~hashlearn.encoding.info`). :func:`measure_robustness` says how well a
model finds edited copies of photos (:mod:`~hashlearn.encoding.robustness`).

>>> from hashlearn.encoding import encode_image_files, write_image_codes
>>> from hashlearn.hashers import load_hasher
>>> result = encode_image_files(load_hasher("model.safetensors"), "photos/")  # doctest: +SKIP
>>> write_image_codes(result, "photos.npz")  # doctest: +SKIP
"""

from hashlearn.encoding.budget import DecodeBudget
from hashlearn.encoding.codes_file import (
    CodesFile,
    read_codes,
    read_image_names,
    write_codes,
    write_image_codes,
)
from hashlearn.encoding.encode import (
    EncodedFiles,
    ImageCodes,
    assemble_image_codes,
    encode_file_list,
    encode_image_files,
    image_encoding_job,
)
from hashlearn.encoding.encoder import ImageEncoder
from hashlearn.encoding.errors import ImageMismatchError, TooLargeError
from hashlearn.encoding.files import IMAGE_SUFFIXES, image_ids, list_image_files, read_image_file
from hashlearn.encoding.folder import (
    FolderIndex,
    PreparedFolder,
    default_work_dir,
    index_folder,
    prepare_folder,
)
from hashlearn.encoding.images import (
    IMAGE_FORMATS,
    DecodedImage,
    ImageHeader,
    as_model_array,
    image_header,
    parse_image_shape,
    read_image,
)
from hashlearn.encoding.info import (
    ArrayInfo,
    ArraysFileInfo,
    IndexFileInfo,
    ModelFileInfo,
    describe_file,
    model_input,
)
from hashlearn.encoding.robustness import (
    DEFAULT_TRANSFORMS,
    TRANSFORMS,
    RobustnessResult,
    measure_robustness,
)

__all__ = [
    "DEFAULT_TRANSFORMS",
    "IMAGE_FORMATS",
    "IMAGE_SUFFIXES",
    "TRANSFORMS",
    "ArrayInfo",
    "ArraysFileInfo",
    "CodesFile",
    "DecodeBudget",
    "DecodedImage",
    "EncodedFiles",
    "FolderIndex",
    "ImageCodes",
    "ImageEncoder",
    "ImageHeader",
    "ImageMismatchError",
    "IndexFileInfo",
    "ModelFileInfo",
    "PreparedFolder",
    "RobustnessResult",
    "TooLargeError",
    "as_model_array",
    "assemble_image_codes",
    "default_work_dir",
    "describe_file",
    "encode_file_list",
    "encode_image_files",
    "image_encoding_job",
    "image_header",
    "image_ids",
    "index_folder",
    "list_image_files",
    "measure_robustness",
    "model_input",
    "parse_image_shape",
    "prepare_folder",
    "read_codes",
    "read_image",
    "read_image_file",
    "read_image_names",
    "write_codes",
    "write_image_codes",
]
