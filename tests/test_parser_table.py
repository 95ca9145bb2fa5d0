"""The language table: one row per construct of the spec, valid inputs with their exact shapes, invalid
inputs with their error class and exact 0-based position.

Shapes are compared as tuples of ``str``: ``("n", "1")`` is a column vector of length n, ``("1", "n")`` a
row, ``()`` a scalar. Dimensions left symbolic are named with the declared names first, then ``n, m, k,
p, ...`` in the order the names they belong to first appear.
"""

from __future__ import annotations

import pytest

import matcalc
from matcalc import (
    DeclarationError,
    MatcalcError,
    MatcalcSyntaxError,
    NestingError,
    ShapeError,
    UnknownFunctionError,
    UnknownNameError,
)
from matcalc import nodes as N


def shape_of(e) -> tuple:
    return tuple(str(d) for d in e.shape)


# (text, Python declarations, expected shape)
VALID = [
    # --- sums and differences, broadcasting
    ("a + b", {}, ()),
    ("x + y", {}, ("n", "1")),
    ("x - y", {}, ("n", "1")),
    ("A + B", {}, ("n", "m")),
    ("A - B", {}, ("n", "m")),
    ("x + 1", {}, ("n", "1")),
    ("1 + x", {}, ("n", "1")),
    ("x + a", {}, ("n", "1")),
    ("A + a", {}, ("n", "m")),
    ("a - b - c", {}, ()),
    ("a −  b", {}, ()),
    ("a -b", {}, ()),
    ("x ++ y", {}, ("n", "1")),
    ("+x", {}, ("n", "1")),
    # --- products
    ("A x", {}, ("n", "1")),
    ("A * x", {}, ("n", "1")),
    ("x' A x", {}, ()),
    ("x'*A*x", {}, ()),
    ("x' * A * x", {}, ()),
    ("2 A x", {}, ("n", "1")),
    ("3x", {}, ("n", "1")),
    ("3 * x", {}, ("n", "1")),
    ("a x", {}, ("n", "1")),
    ("x a", {}, ("n", "1")),
    ("a b", {}, ()),
    ("2 3", {}, ()),
    ("x' y", {}, ()),
    ("x'y", {}, ()),
    ("x y'", {}, ("n", "m")),
    ("A B", {}, ("n", "k")),
    ("A B C", {}, ("n", "p")),
    ("x' A' B x", {}, ()),
    ("A' x", {}, ("m", "1")),
    ("x' A", {}, ("1", "m")),
    ("2(x + y)", {}, ("n", "1")),
    ("(a)(b)", {}, ()),
    ("(A + B)' x", {}, ("m", "1")),
    ("a * -b", {}, ()),
    ("||x|| * ||y||", {}, ()),
    ("||x|| ||y||", {}, ()),          # a norm may follow an operand by juxtaposition
    ("2||x||", {}, ()),
    ("λ ||w||^2", {}, ()),
    ("||X w - y||^2 + λ ||w||^2", {}, ()),
    ("|| ||a|| x ||", {}, ()),
    ("1/2 x", {}, ("n", "1")),
    ("x' A x where x: vector(3)", {}, ()),
    ("A x where A: matrix(3, 4)", {}, ("3", "1")),
    ("A B where A: matrix(2, 3), B: matrix(3, 5)", {}, ("2", "5")),
    # --- element-wise
    ("x .* y", {}, ("n", "1")),
    ("x ⊙ y", {}, ("n", "1")),
    ("x ⊗ y", {}, ("n", "1")),
    ("x ∘ y", {}, ("n", "1")),
    ("A .* B", {}, ("n", "m")),
    ("A ⊙ B", {}, ("n", "m")),
    ("a .* x", {}, ("n", "1")),
    ("x ./ y", {}, ("n", "1")),
    ("x ⊘ y", {}, ("n", "1")),
    ("A ./ B", {}, ("n", "m")),
    ("1 ./ x", {}, ("n", "1")),
    ("A .* B ./ C", {}, ("n", "m")),
    # --- division by a scalar
    ("x / a", {}, ("n", "1")),
    ("A / a", {}, ("n", "m")),
    ("a / b / c", {}, ()),
    ("x / (x' x)", {}, ("n", "1")),
    ("x / y", {}, ()),
    ("A x / s", {}, ("n", "1")),
    # --- dot
    ("x · y", {}, ()),
    ("x ⋅ y", {}, ()),
    ("dot(x, y)", {}, ()),
    ("w·x + b", {}, ()),
    ("a · b", {}, ()),
    ("dot(a, b)", {}, ()),
    ("x' · y'", {}, ()),
    # --- negation, powers
    ("-x", {}, ("n", "1")),
    ("-A", {}, ("n", "m")),
    ("--a", {}, ()),
    ("-x'", {}, ("1", "n")),
    ("a^2", {}, ()),
    ("a^b", {}, ()),
    ("a^-1", {}, ()),
    ("-a^2", {}, ()),
    ("a^b^c", {}, ()),
    ("x^2", {}, ()),
    ("3x^2 y", {}, ()),
    ("A^2", {}, ("n", "n")),
    ("A^-1", {}, ("n", "n")),
    ("A^0", {}, ("n", "n")),
    ("A^-1 x", {}, ("n", "1")),
    ("x .^ 2", {}, ("n", "1")),
    ("x.^a", {}, ("n", "1")),
    ("A .^ 0.5", {}, ("n", "m")),
    ("x.^-1", {}, ("n", "1")),
    ("||x||^2", {}, ()),
    # --- transposes
    ("x'", {}, ("1", "n")),
    ("xᵀ", {}, ("1", "n")),
    ("x^T", {}, ("1", "n")),
    ("A'", {}, ("m", "n")),
    ("Aᵀ", {}, ("m", "n")),
    ("A^T", {}, ("m", "n")),
    ("A''", {}, ("n", "m")),
    ("a'", {}, ()),
    ("(A x)'", {}, ("1", "n")),
    ("xᵀ A x", {}, ()),
    ("x^T A x", {}, ()),
    # --- literals and numbers
    ("[a, b]", {}, ("2", "1")),
    ("[a, b, c]", {}, ("3", "1")),
    ("[a, b; c, d]", {}, ("2", "2")),
    ("[a, b, c; d, e, f]", {}, ("2", "3")),
    ("[a; b]", {}, ("2", "1")),
    ("[a]", {}, ()),
    ("[ln(x^2), sin(3x)]", {}, ("2", "1")),
    ("[x^2, x y]", {}, ("2", "1")),
    ("[1, 2; 3, 4] [a, b]", {}, ("2", "1")),
    ("[a, b]' [c, d]", {}, ()),
    ("2", {}, ()),
    ("0.5", {}, ()),
    ("1e-3", {}, ()),
    ("1E3", {}, ()),
    (".5", {}, ()),
    ("2.5e+2 x", {}, ("n", "1")),
    ("-2", {}, ()),
    # --- element-wise functions
    *[(f"{f}(x)", {}, ("n", "1")) for f in (
        "exp", "log", "ln", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "tanh", "sigmoid", "σ",
        "relu", "softplus", "sqrt", "abs", "sign", "step", "erf", "gelu", "silu", "swish", "elu", "sinh", "cosh",
        "log1p", "expm1")],
    ("leaky_relu(x, 0.01)", {}, ("n", "1")),
    ("leaky_relu(A, a)", {}, ("n", "m")),
    ("clip(x, -1, 1)", {}, ("n", "1")),
    ("exp(a)", {}, ()),
    ("log(A)", {}, ("n", "m")),
    ("tanh(W x + b)", {}, ("n", "1")),
    ("σ(w' x + b)", {}, ()),
    ("max(0, x)", {}, ("n", "1")),
    ("max(x, 0)", {}, ("n", "1")),
    ("min(0, x)", {}, ("n", "1")),
    ("max(0, w·x + b)", {}, ()),
    ("max(0, A x + b)", {}, ("n", "1")),
    ("max(a, b)", {}, ()),
    ("max(x, y)", {}, ("n", "1")),
    ("min(x, y)", {}, ("n", "1")),
    ("max(x, a)", {}, ("n", "1")),
    # --- reductions
    ("sum(x)", {}, ()),
    ("sum(A)", {}, ()),
    ("mean(x)", {}, ()),
    ("mean(A)", {}, ()),
    ("norm(x)", {}, ()),
    ("norm2(x)", {}, ()),
    ("norm(A)", {}, ()),
    ("norm1(x)", {}, ()),
    ("||x||", {}, ()),
    ("‖x‖", {}, ()),
    ("||A||", {}, ()),
    ("||A||_F", {}, ()),
    ("||x||_2", {}, ()),
    ("||x||_1", {}, ()),
    ("||A x - y||", {}, ()),
    ("tr(A)", {}, ()),
    ("trace(A)", {}, ()),
    ("tr(A B)", {}, ()),
    ("det(A)", {}, ()),
    ("logdet(A)", {}, ()),
    ("logsumexp(x)", {}, ()),
    ("numel(A)", {}, ()),
    ("sum(exp(x)) - log(sum(exp(x)))", {}, ()),
    # --- matrix and vector functions
    ("inv(A)", {}, ("n", "n")),
    ("inv(A) x", {}, ("n", "1")),
    ("x' inv(A) x", {}, ()),
    ("diag(x)", {}, ("n", "n")),
    ("diag(A)", {}, ("n", "1")),
    ("diag(x) A", {}, ("n", "m")),
    ("softmax(x)", {}, ("n", "1")),
    ("softmax(W x)", {}, ("n", "1")),
    ("exp(x) ./ sum(exp(x))", {}, ("n", "1")),
    ("outer(x, y)", {}, ("n", "m")),
    ("outer(a, b)", {}, ("n", "m")),
    ("kron(A, B)", {}, ("n*k", "m*p")),
    ("kron(x, y)", {}, ("n*m", "1")),
    ("kron(A, B) where A: matrix(2, 3), B: matrix(4, 5)", {}, ("8", "15")),
    ("ones(n)", {}, ("n", "1")),
    ("ones(3)", {}, ("3", "1")),
    ("ones(m, n)", {}, ("m", "n")),
    ("zeros(n)", {}, ("n", "1")),
    ("zeros(2, 3)", {}, ("2", "3")),
    ("eye(n)", {}, ("n", "n")),
    ("eye(3)", {}, ("3", "3")),
    ("I", {}, ("n", "n")),
    ("eye", {}, ("n", "n")),
    ("I x", {}, ("n", "1")),
    ("A + I", {}, ("n", "n")),
    ("x x' + I", {}, ("n", "n")),
    ("I + A where A: matrix(3, 3)", {}, ("3", "3")),
    ("vector(c)", {}, ("n", "1")),
    ("x + vector(c)", {}, ("n", "1")),
    ("matrix(c)", {}, ("n", "m")),
    ("A + matrix(2)", {}, ("n", "m")),
    ("ones(n)' x", {}, ()),
    # --- declarations in the text
    ("max(0, w·x + b) where b: scalar, w: vector(n)", {}, ()),
    ("w·x + b where w, x: vector(n)", {}, ()),
    ("w·x + b where w, x: vector(d)", {}, ()),
    ("x + y where x: vector(3)", {}, ("3", "1")),
    ("A x where A: matrix(n)", {}, ("n", "1")),
    ("A x where A: matrix(m, n)", {}, ("m", "1")),
    ("A x where A: matrix", {}, ("n", "1")),
    ("S x where S: symmetric(n)", {}, ("n", "1")),
    ("x where x: scalar", {}, ()),
    ("a where a: vector(n)", {}, ("n", "1")),
    ("a where a: vector", {}, ("n", "1")),
    ("a where a: matrix(2)", {}, ("2", "2")),
    ("X x where X: matrix(m, n); x: vector(n)", {}, ("m", "1")),
    ("a x where a: real, x: vec(3)", {}, ("3", "1")),
    # --- declarations from Python
    ("x'*A*x", {"A": "matrix(n,n)", "x": "vector(n)"}, ()),
    ("A x", {"A": "matrix(m, n)"}, ("m", "1")),
    ("A x", {"A": "matrix(3,4)"}, ("3", "1")),
    ("S x", {"S": "symmetric(n)"}, ("n", "1")),
    ("S", {"S": "symmetric(k)"}, ("k", "k")),
    ("b x", {"b": "scalar"}, ("n", "1")),
    ("b", {"b": "vector(n)"}, ("n", "1")),
    ("x", {"x": "scalar"}, ()),
    ("x + y", {"y": "vector(5)"}, ("5", "1")),
    ("A", {"A": ("m", "n")}, ("m", "n")),
    ("x", {"x": ("n", 1)}, ("n", "1")),
    ("a", {"a": ()}, ()),
    ("W x + v", {"W": "matrix(h, d)"}, ("h", "1")),
    # --- naming convention
    ("a", {}, ()),
    ("g", {}, ()),
    ("h", {}, ("n", "1")),
    ("z", {}, ("n", "1")),
    ("A", {}, ("n", "m")),
    ("Z", {}, ("n", "m")),
    ("W_1", {}, ("n", "m")),
    ("x_1 + x_2", {}, ("n", "1")),
    ("alpha", {}, ()),
    ("alpha x", {}, ("n", "1")),
    ("eta", {}, ()),
    ("lambda", {}, ()),
    ("λ", {}, ()),
    ("λ x", {}, ("n", "1")),
    ("θ", {}, ()),
    ("beta x + gamma", {}, ("n", "1")),
    ("weight", {}, ("n", "1")),
    ("bias", {}, ()),
    ("Wx", {}, ("n", "m")),
    # --- usage inference
    ("A · B", {}, ()),
    ("dot(x, A)", {}, ()),
    ("tr(x)", {}, ()),
    ("inv(x)", {}, ("n", "n")),
    ("softmax(A)", {}, ("n", "m")),  # row-wise (issue 15): a capital stays a matrix
    # --- issue 15: axes, row-wise softmax, one-argument max/min, broadcasting a vector against a matrix
    ("x + A", {}, ("n", "m")), ("A x + B", {}, ("n", "k")), ("x .* A", {}, ("n", "m")),
    ("x ./ A", {}, ("n", "m")), ("max(x, A)", {}, ("n", "m")), ("X W + b'", {"b": "vector(k)"}, ("n", "k")),
    ("softmax(x')", {}, ("1", "n")), ("max(x)", {}, ()), ("min(x)", {}, ()), ("max(A)", {}, ()),
    ("sum(A, axis=1)", {}, ("n", "1")), ("sum(A, axis=0)", {}, ("1", "m")), ("mean(A, axis=-1)", {}, ("n", "1")),
    ("var(A, dim=0, keepdims=True)", {}, ("1", "m")), ("sum(x, axis=0)", {}, ()), ("sum(x, axis=1)", {}, ("n", "1")),
    ("logsumexp(A, axis=1)", {}, ("n", "1")), ("log_softmax(A, axis=0)", {}, ("n", "m")),
    ("u / v", {}, ()),
    ("x / y + z", {}, ()),
    ("A x / y", {}, ("n", "1")),
    ("x / y + w'z", {}, ("n", "1")),
    # --- whitespace and layout
    ("  x'  A  x  ", {}, ()),
    ("x'\nA\nx", {}, ()),
    ("x' A x where\n  x: vector(n)", {}, ()),
]


@pytest.mark.parametrize(("text", "decls", "shape"), VALID, ids=[f"{t!r}{d or ''}" for t, d, _ in VALID])
def test_valid(text, decls, shape):
    e = matcalc.parse(text, **decls)
    assert isinstance(e, N.Node)
    assert shape_of(e) == shape


# (text, Python declarations, error class, 0-based position, fragments the message must contain)
INVALID = [
    # --- syntax
    ('x +', {}, MatcalcSyntaxError, 3, ("expected", "an expression")),
    ('x + ', {}, MatcalcSyntaxError, 4, ()),
    ('(x', {}, MatcalcSyntaxError, 2, ("expected", "')'")),
    ('x)', {}, MatcalcSyntaxError, 1, ("expected",)),
    ('x +* y', {}, MatcalcSyntaxError, 3, ("expected",)),
    ('[]', {}, MatcalcSyntaxError, 1, ("expected",)),
    ('[a, b', {}, MatcalcSyntaxError, 5, ()),
    ('a b ]', {}, MatcalcSyntaxError, 4, ()),
    ('x $ y', {}, MatcalcSyntaxError, 2, ("'$'", "expected")),
    ('x |y', {}, MatcalcSyntaxError, 2, ("||e||",)),
    ('|x|', {}, MatcalcSyntaxError, 0, ()),
    ('||x', {}, MatcalcSyntaxError, 3, ()),
    ('x where', {}, MatcalcSyntaxError, 7, ("expected a name",)),
    ('x where x', {}, MatcalcSyntaxError, 9, ("':'",)),
    ('x where x:', {}, MatcalcSyntaxError, 10, ()),
    ('x where x: vector(n', {}, MatcalcSyntaxError, 19, ("')'",)),
    ('x where x: vector(n) )', {}, MatcalcSyntaxError, 21, ()),
    ('exp(', {}, MatcalcSyntaxError, 4, ()),
    ('exp(x', {}, MatcalcSyntaxError, 5, ()),
    ('exp()', {}, ShapeError, 0, ()),
    ('f(', {}, MatcalcSyntaxError, 2, ()),
    ('x ^', {}, MatcalcSyntaxError, 3, ()),
    ('*x', {}, MatcalcSyntaxError, 0, ()),
    ('/x', {}, MatcalcSyntaxError, 0, ()),
    ('x ,', {}, MatcalcSyntaxError, 2, ()),
    ('x;y', {}, MatcalcSyntaxError, 1, ()),
    ('', {}, MatcalcSyntaxError, 0, ()),
    ('   ', {}, MatcalcSyntaxError, 0, ()),
    ('x y z )', {}, MatcalcSyntaxError, 6, ()),
    ('1.2.3', {}, MatcalcSyntaxError, 3, ("number",)),
    ('x where x: vector(n) y', {}, MatcalcSyntaxError, 21, ()),
    ('a ^^ b', {}, MatcalcSyntaxError, 3, ()),
    ('x .. y', {}, MatcalcSyntaxError, 2, ()),
    ('x @ y', {}, ShapeError, 2, ("two column vectors",)),  # '@' is NumPy's matrix product (issue 17)
    ('x # y', {}, MatcalcSyntaxError, 2, ()),
    ('x where 3: scalar', {}, MatcalcSyntaxError, 8, ()),
    # --- shapes
    ("x + y'", {}, ShapeError, 2, ("x (vector(n))", "y' (row vector(1, m))", "outer(x, y)", "ones")),
    ('x + A where x: vector(3), A: matrix(2, 3)', {}, ShapeError, 2, ("x (vector(3))", "A (matrix(2, 3))")),
    ("x' + A where x: vector(2), A: matrix(2, 3)", {}, ShapeError, 3, ()),
    ('mean(X, 2)', {}, ShapeError, 8, ("mean(X, axis=1)", "MATLAB's dimension 2 is axis=1")),
    ('sum(X, axis=2)', {}, ShapeError, 12, ("axis=1", "axis=0")),
    ('sum(X, axis=1, keepdims=False)', {}, ShapeError, 24, ("keepdims",)),
    ('sum(X, axes=1)', {}, ShapeError, 7, ("axis=",)),
    ('exp(X, axis=1)', {}, ShapeError, 7, ("no keyword",)),
    ('max(x, y, axis=1)', {}, ShapeError, 10, ("element-wise",)),
    ('sum(a, axis=1) where a: scalar', {}, ShapeError, 4, ("scalar",)),
    ('sum(axis=1, X)', {}, MatcalcSyntaxError, 12, ("keyword",)),
    ('x y', {}, ShapeError, 2, ("x (vector(n))", "y (vector(m))", "x' y")),
    ('x y z', {}, ShapeError, 2, ()),
    ('A B where A: matrix(2,3), B: matrix(4,5)', {}, ShapeError, 2, ("A (matrix(2, 3))", "B (matrix(4, 5))")),
    ('x + y where x: vector(2), y: vector(3)', {}, ShapeError, 2, ("x (vector(2))", "y (vector(3))")),
    ('x + y where x: vector(n), y: vector(m)', {}, ShapeError, 2, ()),
    ('x / y where y: vector(n)', {}, ShapeError, 2, ("x (vector(n))", "y (vector(n))", "./", "inv()")),
    ('a / x where x: vector(n)', {}, ShapeError, 2, ("./",)),
    ('x · A where A: matrix(n, n)', {}, ShapeError, 2, ("x is vector(n)", "A is matrix(n, n)")),
    ('x · y where x: vector(2), y: vector(3)', {}, ShapeError, 2, ("vector(2)", "vector(3)")),
    ('dot(x, y, z)', {}, ShapeError, 0, ()),
    ('dot(x)', {}, ShapeError, 0, ()),
    ('A^0.5', {}, ShapeError, 2, (".^",)),
    ('x^2 where x: vector(n)', {}, ShapeError, 1, (".^",)),
    ("x'^2", {}, ShapeError, 2, ()),
    ('A^x', {}, ShapeError, 2, ()),
    ('A^a where A: matrix(n,n)', {}, ShapeError, 2, ()),
    ('a^x where x: vector(n)', {}, ShapeError, 2, ()),
    ('A .^ x where x: vector(n)', {}, ShapeError, 5, ()),
    ('det(C) where C: matrix(2, 3)', {}, ShapeError, 4, ("square", "matrix(2, 3)")),
    ('tr(x) where x: vector(n)', {}, ShapeError, 3, ()),
    ('inv(a) where a: scalar', {}, ShapeError, 4, ()),
    ("det(x')", {}, ShapeError, 4, ()),
    ('diag(a)', {}, ShapeError, 5, ("a is scalar",)),
    ("diag(x')", {}, ShapeError, 5, ()),
    ('diag(C) where C: matrix(2,3)', {}, ShapeError, 5, ()),
    ('softmax(a) where a: scalar', {}, ShapeError, 8, ()),
    ('kron(a, A)', {}, ShapeError, 5, ()),
    ('vector(x) where x: vector(n)', {}, ShapeError, 7, ()),
    ('[x, y] where x: vector(n)', {}, ShapeError, 1, ()),
    ('[a, b; c]', {}, ShapeError, 7, ("2 and 1",)),
    ('||A||_2', {}, ShapeError, 0, ("||A||_F",)),
    ('||A||_1', {}, ShapeError, 0, ()),
    ('sum()', {}, ShapeError, 0, ()),
    ('sum(A, B)', {}, ShapeError, 7, ("axis=1",)),
    ('max(x, y, z)', {}, ShapeError, 0, ()),
    ('ones(n, m, k)', {}, ShapeError, 0, ()),
    ('eye(n, m)', {}, ShapeError, 0, ()),
    ('ones(0)', {}, ShapeError, 5, ()),
    ('ones(2.5)', {}, ShapeError, 5, ()),
    ('ones(x + 1)', {}, ShapeError, 5, ()),
    ('vector()', {}, ShapeError, 0, ()),
    ('exp(x, y)', {}, ShapeError, 0, ()),
    ('A .* B where A: matrix(2,2), B: matrix(2,3)', {}, ShapeError, 2, ()),
    ("x' + x", {}, ShapeError, 3, ("x' (row vector(1, n))", "x (vector(n))")),
    ('A x where A: matrix(3, 4), x: vector(3)', {}, ShapeError, 2, ("A (matrix(3, 4))", "x (vector(3))")),
    ('S + A where S: symmetric(n), A: matrix(n, m)', {}, ShapeError, 2, ()),
    # --- unknown functions
    ('sine(x)', {}, UnknownFunctionError, 0, ("did you mean sin?",)),
    ('arsinh(x)', {}, UnknownFunctionError, 0, ("arsinh",)),
    ('leaky_relu(x)', {}, ShapeError, 0, ("leaky_relu() takes 2 arguments, not 1",)),
    ('clip(x, 1)', {}, ShapeError, 0, ("clip() takes 3 arguments, not 2",)),
    ('clip(x, 2, -1)', {}, MatcalcError, 8, ("lower bound at most its upper bound", "2 > -1")),
    ('leaky_relu(x, y) where y: vector(n)', {}, ShapeError, 14, ("slope of leaky_relu() must be a scalar",)),
    ('clip(x, lo, y) where y: vector(n)', {}, ShapeError, 12, ("upper bound of clip() must be a scalar",)),
    ('expp(x)', {}, UnknownFunctionError, 0, ("did you mean exp?",)),
    ('foo(x)', {}, UnknownFunctionError, 0, ()),
    ('exponent(x)', {}, UnknownFunctionError, 0, ()),
    ('lg(x)', {}, UnknownFunctionError, 0, ("did you mean log?",)),
    ('tanhh(x)', {}, UnknownFunctionError, 0, ()),
    ('relu6(x)', {}, UnknownFunctionError, 0, ("did you mean relu?",)),
    ('softmx(x)', {}, UnknownFunctionError, 0, ("did you mean softmax?",)),
    ('trc(A)', {}, UnknownFunctionError, 0, ("did you mean tr?",)),
    ('EXP(x)', {}, UnknownFunctionError, 0, ("did you mean exp?",)),
    ('sin2(x)', {}, UnknownFunctionError, 0, ("did you mean sin?",)),
    ('exp', {}, UnknownFunctionError, 0, ("exp(...)",)),
    ('exp x', {}, UnknownFunctionError, 0, ()),
    ('sum', {}, UnknownFunctionError, 0, ()),
    ('a + log', {}, UnknownFunctionError, 4, ()),
    # --- declarations
    ('x where x: vektor(n)', {}, DeclarationError, 11, ("did you mean vector?",)),
    ('x where x: vector(0)', {}, DeclarationError, 18, ()),
    ('x where x: vector(1.5)', {}, DeclarationError, 18, ()),
    ('x where x: matrix(1,2,3)', {}, DeclarationError, 11, ()),
    ('x where x: vector(n, m)', {}, DeclarationError, 11, ()),
    ('x where x: scalar(n)', {}, DeclarationError, 11, ()),
    ('x where x: vector(n), x: scalar', {}, DeclarationError, 22, ("declared twice",)),
    ('x where exp: scalar', {}, DeclarationError, 8, ("reserved",)),
    ('I where I: matrix(n)', {}, DeclarationError, 8, ()),
    ('x where x: tensor(n)', {}, DeclarationError, 11, ()),
    # --- Python declarations (positions are in the declaration string)
    ('x', {'x': 'vektor(n)'}, DeclarationError, 0, ()),
    ('x', {'x': 'vector(0)'}, DeclarationError, 7, ()),
    ('x', {'x': 'matrix(n, n, n)'}, DeclarationError, 0, ()),
    ('x', {'x': 'vector(n'}, DeclarationError, 8, ()),
    ('A x', {'A': 'matrix(3, 4)', 'x': 'vector(5)'}, ShapeError, 2, ()),
    ('x where x: scalar', {'x': 'vector(n)'}, DeclarationError, 8, ()),
    ('x', {'x': ''}, DeclarationError, 0, ()),
    ("x'*A*x", {'A': 'matrix(n,m)', 'x': 'vector(n)'}, ShapeError, 4, ()),
    ('x', {'x': 'matrix(n) extra'}, DeclarationError, 10, ()),
]


@pytest.mark.parametrize(("text", "decls", "cls", "position", "fragments"), INVALID,
                         ids=[f"{t!r}{d or ''}" for t, d, *_ in INVALID])
def test_invalid(text, decls, cls, position, fragments):
    with pytest.raises(MatcalcError) as info:
        matcalc.parse(text, **decls)
    err = info.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert err.position == position, str(err)
    message = str(err)
    for fragment in fragments:
        assert fragment in message
    # the message shows the input line with a caret under the offending character
    lines = message.split("\n")
    assert len(lines) >= 3, message
    caret = lines[-1]
    assert caret.strip() == "^"
    if err.source is not None and len(err.source) <= 70 and "\n" not in err.source:
        assert lines[-2] == "  " + err.source
        assert caret.index("^") - 2 == position


def test_syntax_errors_say_what_was_expected():
    for text in ["x +", "(x", "x +* y", "[a, b", "x where", "exp(x", "x $ y", "x y )"]:
        with pytest.raises(MatcalcSyntaxError, match="expected"):
            matcalc.parse(text)


def test_error_classes_form_one_hierarchy():
    for cls in (MatcalcSyntaxError, ShapeError, UnknownFunctionError, DeclarationError, NestingError):
        assert issubclass(cls, MatcalcError)
    assert issubclass(UnknownFunctionError, UnknownNameError)
    assert issubclass(MatcalcError, Exception)


@pytest.mark.parametrize("decl", [3, ("n", "m", "k"), 2.5, None])
def test_bad_python_declaration_objects(decl):
    with pytest.raises(DeclarationError) as info:
        matcalc.parse("x", x=decl)
    assert info.value.position is None
    assert "x" in str(info.value)


def test_declaration_error_in_python_string_shows_the_declaration():
    with pytest.raises(DeclarationError) as info:
        matcalc.parse("x", x="vector(0)")
    assert info.value.position == 7
    assert str(info.value).splitlines()[-2:] == ["  vector(0)", "         ^"]


def test_caret_on_a_later_line():
    text = "x' A x\n + y' B\n + w'"
    e = matcalc.parse(text)
    assert shape_of(e) == ("1", "k")  # x: n, A: n x n, y: m, B: m x k
    with pytest.raises(ShapeError) as info:
        matcalc.parse("x' A\n + y")  # a row plus a column
    err = info.value
    assert err.position == 6
    assert str(err).splitlines()[-2:] == ["   + y", "   ^"]


def test_caret_in_a_long_line_is_windowed():
    text = " + ".join(["a"] * 100) + " + x y"
    with pytest.raises(ShapeError) as info:
        matcalc.parse(text)
    err = info.value
    assert err.position == len(text) - 1
    line, caret = str(err).splitlines()[-2:]
    assert len(line) < 90
    assert line[caret.index("^")] == "y"


# Spellings that must mean exactly the same node (nodes are hash-consed, so `is` is equality).
SAME = [
    ("x ⊙ y", "x .* y"), ("x ⊗ y", "x .* y"), ("x ∘ y", "x .* y"), ("x ⊘ y", "x ./ y"),
    ("x · y", "dot(x, y)"), ("x ⋅ y", "dot(x, y)"), ("xᵀ", "x'"), ("x^T", "x'"), ("Aᵀ A", "A' A"),
    ("a − b", "a - b"), ("ln(x)", "log(x)"), ("σ(x)", "sigmoid(x)"), ("max(0, x)", "relu(x)"),
    ("max(x, 0)", "relu(x)"), ("min(0, x)", "-relu(-x)"), ("max(a, b)", "b + relu(a - b)"),
    ("max(x, y)", "y + relu(x - y)"), ("min(a, b)", "a - relu(a - b)"),
    ("swish(x)", "silu(x)"), ("leaky_relu(x, a)", "relu(x) - a relu(-x)"), ("π", "pi"),
    ("clip(x, a, b)", "a + relu(x - a) - relu(x - b)"), ("clip(x, -1, 1)", "-1 + relu(x + 1) - relu(x - 1)"),
    ("norm2(x)", "norm(x)"),
    ("||x||", "norm(x)"), ("‖x‖", "norm(x)"), ("||A||_F", "norm(A)"), ("||x||_2", "norm(x)"),
    ("||x||_1", "norm1(x)"), ("trace(A)", "tr(A)"), ("A^-1", "inv(A)"), ("outer(x, y)", "x y'"),
    ("eye(n)", "I"), ("eye", "I"), ("x'*A*x", "x' A x"), ("3x", "3 * x"), ("2 A x", "2 * A * x"),
    ("1/2 x", "0.5 x"), ("1e-3", "0.001"), ("x .^ 2", "x.^2"), ("ones(1)", "1"), ("eye(1)", "1"),
    ("(x)", "x"), ("((x + y))", "x + y"), ("+x", "x"), ("x ++ y", "x + y"), ("a -b", "a - b"),
    ("max(0, w·x + b)", "max(0, w·x + b) where b: scalar, w: vector(n)"),
    ("w·x + b", "w·x + b where w, x: vector(n)"), ("matrix(n)", "matrix(n, n)"),
    ("A x where A: matrix(n)", "A x where A: matrix(n, n)"), ("x where x: vector", "x"),
    ("x' A x", "x' A x where x: vector(n); A: matrix(n, n)"),
    ("x'\n  A\tx", "x' A x"), ("x' A x where\n x: vector(n)", "x' A x"),
]


@pytest.mark.parametrize(("left", "right"), SAME, ids=[f"{a!r}={b!r}" for a, b in SAME])
def test_same_meaning(left, right):
    if left == "matrix(n)":  # a declaration kind, not an expression
        from matcalc.typecheck import parse_declaration

        assert parse_declaration(left) == parse_declaration(right)
        return
    assert matcalc.parse(left) is matcalc.parse(right)


def test_python_and_where_declarations_agree():
    by_python = matcalc.parse("x'*A*x", A="matrix(n,n)", x="vector(n)")
    by_where = matcalc.parse("x'*A*x where A: matrix(n, n), x: vector(n)")
    assert by_python is by_where
    assert shape_of(by_python) == ()
    assert matcalc.parse("S x", S="symmetric(n)").args[0].symmetric
    assert shape_of(matcalc.parse("b", b="scalar")) == ()


def test_declaration_wins_over_usage_and_convention():
    assert shape_of(matcalc.parse("a", a="vector(n)")) == ("n", "1")
    assert shape_of(matcalc.parse("A", A="scalar")) == ()
    with pytest.raises(ShapeError):  # usage would make y a scalar, but the declaration says vector
        matcalc.parse("x / y", y="vector(n)")


# Which node the parser builds for each construct.
NODE_TYPES = [
    ("a + b", N.Add), ("a - b", N.Add), ("-x", N.Neg), ("A x", N.MatMul), ("3x", N.MatMul),
    ("x .* y", N.Hadamard), ("x ⊗ y", N.Hadamard), ("x ./ y", N.ElemDiv), ("x / a", N.Div),
    ("x · y", N.Dot), ("a^2", N.Power), ("A^3", N.Power), ("A^-1", N.Inv), ("x .^ 2", N.ElemPower),
    ("x'", N.Transpose), ("[a, b]", N.VectorLit), ("[a, b; c, d]", N.MatrixLit), ("2", N.Number),
    ("-2", N.Number), ("exp(x)", N.Apply), ("max(0, x)", N.Apply), ("sum(x)", N.Sum), ("mean(x)", N.Mean),
    ("norm(x)", N.Norm), ("||x||_1", N.Norm), ("tr(A)", N.Trace), ("det(A)", N.Det), ("logdet(A)", N.LogDet),
    ("logsumexp(x)", N.LogSumExp), ("inv(A)", N.Inv), ("diag(x)", N.DiagMat), ("diag(A)", N.DiagVec),
    ("softmax(x)", N.Softmax), ("outer(x, y)", N.MatMul), ("kron(A, B)", N.Kron), ("ones(n)", N.Ones),
    ("zeros(n)", N.Zeros), ("eye(n)", N.Identity), ("I", N.Identity), ("vector(c)", N.Fill),
    ("matrix(c)", N.Fill), ("numel(A)", N.Numel), ("x", N.Symbol),
]


@pytest.mark.parametrize(("text", "cls"), NODE_TYPES, ids=[t for t, _ in NODE_TYPES])
def test_node_types(text, cls):
    assert type(matcalc.parse(text)) is cls


def test_numbers_are_exact_and_negative_literals_fold():
    from fractions import Fraction

    assert matcalc.parse("1e-3").value == Fraction(1, 1000)
    assert matcalc.parse("0.5").value == Fraction(1, 2)
    assert matcalc.parse("-2").value == -2
    assert matcalc.parse("2^-1").args[1].value == -1
    assert isinstance(matcalc.parse("-2^2"), N.Neg)  # -(2^2), as in mathematics


def test_norm_kinds():
    assert matcalc.parse("||x||").order == 2
    assert matcalc.parse("norm1(A)").order == 1
    assert matcalc.parse("||x||_1").order == 1
