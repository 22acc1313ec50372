/// @file edit.hpp
/// @brief Everything of ganinv's latent editing in one include: interpolation, direction
///        finding (SeFa, GANSpace, InterFaceGAN, StyleSpace), applying edits and style mixing,
///        directions files. See docs/editing.md.
#pragma once

#include "ganinv/edit/directions.hpp"
#include "ganinv/edit/ganspace.hpp"
#include "ganinv/edit/interfacegan.hpp"
#include "ganinv/edit/interpolate.hpp"
#include "ganinv/edit/sampling.hpp"
#include "ganinv/edit/sefa.hpp"
#include "ganinv/edit/stylespace.hpp"
