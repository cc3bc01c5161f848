// Data parallelism over MPI (Debian's OpenMPI; built where CMake finds it, NANORLHF_WITH_MPI): every
// rank holds the whole model and computes the gradient of its shard of the batch; an all-reduce
// sums the gradients, so every rank takes the same optimizer step. Without MPI, or when a program
// was not launched by mpirun, there is one rank and every call here is a no-op or an identity.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nanorlhf::dist {

// MPI_Init when the process was launched by mpirun (OMPI_COMM_WORLD_SIZE or PMI_RANK set); an
// error naming the build when it was launched so but built without MPI. finalize() at exit.
void init(int *argc, char ***argv);
void finalize();
bool initialized();

int rank();        // 0 .. world_size() - 1
int world_size();  // 1 without MPI
int local_size();  // ranks on this machine (OMPI_COMM_WORLD_LOCAL_SIZE), 1 without MPI
inline bool is_main() { return rank() == 0; }

void barrier();
// In place: x <- sum over ranks of x.
void all_reduce_sum(float *x, int64_t n);
void all_reduce_sum(double *x, int64_t n);
// Every rank's values, concatenated in rank order (ranks may hold different counts).
std::vector<double> all_gather(const std::vector<double> &local);
std::vector<int64_t> all_gather(const std::vector<int64_t> &local);
std::vector<float> all_gather(const std::vector<float> &local);
std::vector<std::string> all_gather(const std::string &local);  // one string per rank
// Rank 0's string on every rank.
std::string broadcast(const std::string &s);
// NCCL (built with the CUDA backend and MPI where CMake finds NCCL): under mpirun with a GPU per
// rank on each machine, init() shows rank r of a machine its GPU r alone (CUDA_VISIBLE_DEVICES,
// unless the user set it), so device "cuda" is that GPU, and gradients on it are summed by
// ncclAllReduce; MPI carries NCCL's unique id (as llm.c does). Otherwise device gradients travel
// through host memory and MPI.
bool device_all_reduce();  // NCCL built, several ranks, a GPU each
void all_reduce_sum_device(float *device_ptr, int64_t n);  // in place, on the default stream

// Prints "rank r: message" to stderr and stops every rank (MPI_Abort); exits with `code` alone.
[[noreturn]] void abort(const std::string &message, int code);

}  // namespace nanorlhf::dist
