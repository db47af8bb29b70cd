"""Reference package of the course: data, reference models, training, expected answers."""
