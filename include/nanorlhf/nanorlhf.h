// The whole engine in one include: tensors, differentiable ops, grad mode, gradcheck, RNG.
#pragma once
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "tensor/random.h"
#include "tensor/tensor.h"
