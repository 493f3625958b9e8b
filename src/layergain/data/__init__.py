"""Image sets: folders, manifests, validation, the bundled sample."""

from layergain.data.cards import DataCard, find_data_card, read_data_card
from layergain.data.imageset import IMAGE_EXTENSIONS, ImageSet, bundled_sample_path, load_image_set

__all__ = [
    "ImageSet", "load_image_set", "bundled_sample_path", "IMAGE_EXTENSIONS", "DataCard", "find_data_card", "read_data_card",
]
