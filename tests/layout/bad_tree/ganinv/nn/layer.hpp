// Fixture of the include-direction test: nn (layer 2) including models (layer 6) must be reported.
#pragma once
#include "ganinv/models/model.hpp"
