# Course assignments (lectures/assignments/README.md). Included at the end of CMakeLists.txt, once
# every library target exists. Each assignment names one reference source of the library and the
# student's file that takes its place.
#
# Normal build (NANORLHF_TESTS on): for every assignment,
#   grade_<name>_reference  the grading suite against the library as it is;
#   grade_<name>_student    the same suite with the untouched student file linked in: an object file
#                           given to the linker directly defines its symbols before any static library
#                           member is looked at, so the reference's member (which defines exactly the
#                           same symbols) is never pulled in; no second build of the library needed;
#   and two ctests (label "assignments"): the reference scores every point, the stubs score none and
#   crash nothing (skipped, exit 77, once a student has edited the file).
# -DNANORLHF_ASSIGNMENT=<name> (what lectures/assignments/grade.sh does, in its own build folder):
#   the library target is built with the student's file in place of the reference, and grade_<name>
#   runs the suite against it. -DNANORLHF_ASSIGNMENT_DIR=<folder> takes the student's file from
#   another folder (a submission) instead of lectures/assignments/<name>/.

set(NANORLHF_ASSIGNMENT "" CACHE STRING
    "Build the library with this assignment's student file in place of the reference (lectures/assignments/)")
set(NANORLHF_ASSIGNMENT_DIR "" CACHE PATH "Folder holding the student's file (default lectures/assignments/<name>)")

set(NR_ASG_ROOT ${CMAKE_SOURCE_DIR}/lectures/assignments)
set(NR_ASSIGNMENTS "")
# name, library target (NONE: no library file is swapped), reference file, student file, grading
# suite, what the suite links (KERNELS: the kernel libraries; ALL: the highest layer)
macro(nr_assignment name target reference student suite link)
  list(APPEND NR_ASSIGNMENTS ${name})
  set(NR_ASG_${name}_TARGET ${target})
  set(NR_ASG_${name}_REFERENCE ${CMAKE_SOURCE_DIR}/${reference})
  set(NR_ASG_${name}_STUDENT ${student})
  set(NR_ASG_${name}_SUITE ${NR_ASG_ROOT}/${name}/${suite})
  set(NR_ASG_${name}_LINK ${link})
endmacro()
nr_assignment(01_softmax nanorlhf_kernels_cpu kernels/cpu/softmax.cpp softmax.cpp grade_softmax.cpp KERNELS)
nr_assignment(02_blocked_gemm nanorlhf_kernels_cpu kernels/cpu/gemm_blocked.cpp gemm_blocked.cpp
              grade_blocked_gemm.cpp KERNELS)
nr_assignment(03_reward_model nanorlhf_rlhf rlhf/objectives_reward.cpp objectives_reward.cpp
              grade_reward_model.cpp ALL)
nr_assignment(04_gae_ppo nanorlhf_rlhf rlhf/objectives_ppo.cpp objectives_ppo.cpp grade_gae_ppo.cpp ALL)
nr_assignment(05_dpo nanorlhf_rlhf rlhf/objectives_dpo.cpp objectives_dpo.cpp grade_dpo.cpp ALL)
nr_assignment(07_grpo nanorlhf_rlhf rlhf/objectives_grpo.cpp objectives_grpo.cpp grade_grpo.cpp ALL)
# The CUDA softmax lives in kernels/cuda/softmax.cu with its other kernels, so nothing in the library
# is swapped: the grader links the student's kernel or the reference adapter (the library's kernel).
nr_assignment(06_cuda_softmax NONE lectures/assignments/06_cuda_softmax/reference_softmax.cpp softmax_forward.cu
              grade_cuda_softmax.cpp KERNELS)

if(NOT NANORLHF_TESTS AND NOT NANORLHF_ASSIGNMENT)
  return()
endif()
if(NOT TARGET GTest::gtest)
  find_package(GTest REQUIRED)
endif()
set(NR_ASG_KERNELS ${NR_KERNELS})
if(NOT NR_ASG_KERNELS)
  set(NR_ASG_KERNELS nanorlhf_kernels_cpu)
endif()

# The graders' main (per-part processes, points, the total), compiled once.
add_library(nr_grading_main OBJECT ${NR_ASG_ROOT}/grading_main.cpp)
target_include_directories(nr_grading_main PRIVATE ${NR_ASG_ROOT})
target_link_libraries(nr_grading_main PRIVATE GTest::gtest)

# An executable from assignment `name`'s suite, the grading main and `extra` sources.
function(nr_add_grader exe name suite_objects)
  set(extra ${ARGN})
  add_executable(${exe} $<TARGET_OBJECTS:${suite_objects}> $<TARGET_OBJECTS:nr_grading_main> ${extra})
  target_include_directories(${exe} PRIVATE ${NR_ASG_ROOT})
  if(NR_ASG_${name}_LINK STREQUAL "ALL")
    target_link_libraries(${exe} PRIVATE ${NR_ALL} GTest::gtest)
  else()
    target_link_libraries(${exe} PRIVATE ${NR_ASG_KERNELS} GTest::gtest)
  endif()
endfunction()

function(nr_add_suite_objects name)
  add_library(nr_grade_${name}_suite OBJECT ${NR_ASG_${name}_SUITE})
  target_include_directories(nr_grade_${name}_suite PRIVATE ${NR_ASG_ROOT})
  if(NR_ASG_${name}_LINK STREQUAL "ALL")
    target_link_libraries(nr_grade_${name}_suite PRIVATE ${NR_ALL} GTest::gtest)
  else()
    target_link_libraries(nr_grade_${name}_suite PRIVATE ${NR_ASG_KERNELS} GTest::gtest)
  endif()
endfunction()

if(NANORLHF_ASSIGNMENT)
  # --- grading one student's file: swap it into the library --------------------------------------
  set(name ${NANORLHF_ASSIGNMENT})
  if(NOT name IN_LIST NR_ASSIGNMENTS)
    string(REPLACE ";" ", " valid "${NR_ASSIGNMENTS}")
    message(FATAL_ERROR "NANORLHF_ASSIGNMENT=${name} is not an assignment; the assignments are: ${valid}")
  endif()
  set(dir ${NR_ASG_ROOT}/${name})
  if(NANORLHF_ASSIGNMENT_DIR)
    get_filename_component(dir ${NANORLHF_ASSIGNMENT_DIR} ABSOLUTE)
  endif()
  set(student ${dir}/${NR_ASG_${name}_STUDENT})
  if(NOT EXISTS ${student})
    message(FATAL_ERROR "assignment ${name}: the student's file ${student} does not exist")
  endif()
  nr_add_suite_objects(${name})
  set(target ${NR_ASG_${name}_TARGET})
  if(target STREQUAL "NONE")
    if(NANORLHF_WITH_CUDA)
      nr_add_grader(grade_${name} ${name} nr_grade_${name}_suite ${student})
    else()
      nr_add_grader(grade_${name} ${name} nr_grade_${name}_suite)  # no CUDA backend: its tests skip
      message(STATUS "nanorlhf: assignment ${name} needs the CUDA backend; its tests will skip")
    endif()
  else()
    get_target_property(srcs ${target} SOURCES)
    list(FIND srcs ${NR_ASG_${name}_REFERENCE} at)
    if(at EQUAL -1)
      message(FATAL_ERROR "assignment ${name}: ${NR_ASG_${name}_REFERENCE} is not a source of ${target}")
    endif()
    list(REMOVE_ITEM srcs ${NR_ASG_${name}_REFERENCE})
    list(APPEND srcs ${student})
    set_target_properties(${target} PROPERTIES SOURCES "${srcs}")
    nr_add_grader(grade_${name} ${name} nr_grade_${name}_suite)
  endif()
  message(STATUS "nanorlhf: assignment ${name}: ${student} replaces ${NR_ASG_${name}_REFERENCE}")
else()
  # --- normal build: every grader against the reference and against the untouched stubs -----------
  foreach(name ${NR_ASSIGNMENTS})
    set(student ${NR_ASG_ROOT}/${name}/${NR_ASG_${name}_STUDENT})
    set(reference ${NR_ASG_${name}_REFERENCE})
    if(NR_ASG_${name}_TARGET STREQUAL "NONE" AND NOT NANORLHF_WITH_CUDA)
      set(student "")  # a CUDA assignment in a CPU-only build: the suite alone, every test skips
      set(reference "")
    elseif(NOT NR_ASG_${name}_TARGET STREQUAL "NONE")
      set(reference "")  # the reference is already in the library
    endif()
    nr_add_suite_objects(${name})
    nr_add_grader(grade_${name}_reference ${name} nr_grade_${name}_suite ${reference})
    nr_add_grader(grade_${name}_student ${name} nr_grade_${name}_suite ${student})
    add_test(NAME assignments.${name}.reference COMMAND grade_${name}_reference --expect=full)
    add_test(NAME assignments.${name}.student_stubs
             COMMAND grade_${name}_student --expect=zero --student_source=${NR_ASG_ROOT}/${name}/${NR_ASG_${name}_STUDENT})
    set_tests_properties(assignments.${name}.reference assignments.${name}.student_stubs
                         PROPERTIES LABELS "assignments;${name}" SKIP_RETURN_CODE 77 TIMEOUT 900)
  endforeach()
endif()
