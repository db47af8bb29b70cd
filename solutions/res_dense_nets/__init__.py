"""`res_dense_nets` (sheet 000): a residual MLP and a small DenseNet on Fashion-MNIST."""
