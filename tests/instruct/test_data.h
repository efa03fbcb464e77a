#pragma once
// A small synthetic catalogue for the instruct tests: fast under sanitizers, and with category
// labels so every template cell can be filled.
#include "data/dataset.h"

namespace chatrec::instruct::testdata {

// `users` users, each with 6..13 items in a fixed order; items carry one of four genres.
data::Dataset synthetic(std::size_t users = 60, std::size_t items = 80,
                        bool with_categories = true);

}  // namespace chatrec::instruct::testdata
