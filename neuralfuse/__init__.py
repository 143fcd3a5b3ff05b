from neuralfuse.checkpoint import load_base_model, save_checkpoint
from neuralfuse.data import list_datasets, load_dataset
from neuralfuse.generators import create_generator, list_generators
from neuralfuse.models import create_model, list_models
from neuralfuse.qat import enable_qat
