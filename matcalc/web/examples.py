"""The examples the page offers one click away, from the source texts: Parr and Howard's *The Matrix
Calculus You Need For Deep Learning*, d2l's appendix on matrix calculus, and the deep-learning layers."""

from __future__ import annotations

EXAMPLES: list[dict] = [
    {"title": "neuron", "source": "Parr & Howard", "expr": "max(0, w·x + b)", "wrt": "w"},
    {"title": "neuron loss", "source": "Parr & Howard",
     "expr": "(max(0, w·x + b) - y)^2 where y: scalar", "wrt": "w"},
    {"title": "MSE loss", "source": "least squares", "expr": "||X w - y||^2", "wrt": "w"},
    {"title": "x' A x", "source": "d2l", "expr": "x' A x", "wrt": "x"},
    {"title": "x' A x, symmetric A", "source": "d2l", "expr": "x' A x",
     "declarations": {"A": "symmetric(n)"}, "wrt": "x", "layout": "denominator"},
    {"title": "Hessian of x' A x", "source": "d2l", "expr": "x' A x", "wrt": "x", "order": 2},
    {"title": "logistic regression", "source": "d2l",
     "expr": "-sum(y .* log(sigmoid(X w)) + (1 - y) .* log(1 - sigmoid(X w)))", "wrt": "w",
     "layout": "denominator"},
    {"title": "dense layer", "source": "deep learning", "expr": "tanh(W x + b)", "wrt": "x"},
    {"title": "dense layer, weights", "source": "deep learning", "expr": "W x + b", "wrt": "W"},
    {"title": "softmax cross-entropy", "source": "deep learning", "expr": "-y' log(softmax(W x))", "wrt": "W",
     "layout": "denominator"},
    {"title": "matrix factorisation", "source": "Matrix Cookbook", "expr": "||X - U V||_F^2", "wrt": "V",
     "layout": "denominator"},
    {"title": "log-determinant", "source": "Matrix Cookbook", "expr": "logdet(X)", "wrt": "X"},
]
