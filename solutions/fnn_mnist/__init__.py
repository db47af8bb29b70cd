"""`fnn_mnist` (sheet 004): dense layers, FNNs, a network trainer and a network user on MNIST."""
