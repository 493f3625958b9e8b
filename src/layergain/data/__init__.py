"""Image sets: folders, manifests, validation, the bundled sample."""

from layergain.data.cards import DataCard, find_data_card, read_data_card
from layergain.data.imageset import IMAGE_EXTENSIONS, ImageSet, bundled_sample_path, load_image_set

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataCard",
    "ImageSet",
    "bundled_sample_path",
    "find_data_card",
    "load_image_set",
    "read_data_card",
]
