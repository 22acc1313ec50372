// Fixture of the include-direction test: a legal include (models -> nn).
#pragma once
#include "ganinv/nn/layer.hpp"
