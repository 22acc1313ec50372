// Inversion quality table on the CPU (benchmarks/invert_table_impl.hpp has the options).
#include "../invert_table_impl.hpp"

#include <thread>

int main(int argc, char** argv) {
    return ganinv::bench::invert_table_main(argc, argv, ganinv::Cpu{},
                                            ganinv::concat("CPU, ", std::thread::hardware_concurrency(), " threads"));
}
