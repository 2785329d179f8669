# clavis_proto_library(<target> [GRPC] <proto paths relative to the repository root>)
#
# Generates C++ for internal .proto files that live beside the code using
# them (e.g. kms/keys/records.proto -> #include "kms/keys/records.pb.h").
# Imports resolve against the repository root and proto/ (the public API).
# With GRPC, the gRPC stubs (.grpc.pb.h) of their services are made too.
function(clavis_proto_library target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "GRPC" "" "")
  set(srcs)
  set(gen_dir ${CMAKE_BINARY_DIR}/gen)
  foreach(rel ${arg_UNPARSED_ARGUMENTS})
    get_filename_component(dir ${rel} DIRECTORY)
    get_filename_component(base ${rel} NAME_WLE)
    set(cc ${gen_dir}/${dir}/${base}.pb.cc)
    set(h ${gen_dir}/${dir}/${base}.pb.h)
    add_custom_command(
      OUTPUT ${cc} ${h}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${gen_dir}
      COMMAND protobuf::protoc --cpp_out ${gen_dir} -I ${CMAKE_SOURCE_DIR}
              -I ${CMAKE_SOURCE_DIR}/proto ${CMAKE_SOURCE_DIR}/${rel}
      DEPENDS ${CMAKE_SOURCE_DIR}/${rel} protobuf::protoc
      COMMENT "protoc ${rel}"
      VERBATIM)
    list(APPEND srcs ${cc})
    if(arg_GRPC)
      set(grpc_cc ${gen_dir}/${dir}/${base}.grpc.pb.cc)
      set(grpc_h ${gen_dir}/${dir}/${base}.grpc.pb.h)
      add_custom_command(
        OUTPUT ${grpc_cc} ${grpc_h}
        COMMAND ${CMAKE_COMMAND} -E make_directory ${gen_dir}
        COMMAND protobuf::protoc --grpc_out ${gen_dir}
                --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
                -I ${CMAKE_SOURCE_DIR} -I ${CMAKE_SOURCE_DIR}/proto ${CMAKE_SOURCE_DIR}/${rel}
        DEPENDS ${CMAKE_SOURCE_DIR}/${rel} protobuf::protoc gRPC::grpc_cpp_plugin
        COMMENT "protoc --grpc_out ${rel}"
        VERBATIM)
      list(APPEND srcs ${grpc_cc})
    endif()
  endforeach()
  add_library(${target} ${srcs})
  target_include_directories(${target} PUBLIC ${gen_dir})
  target_link_libraries(${target} PUBLIC clavis_proto protobuf::libprotobuf)
  if(arg_GRPC)
    target_link_libraries(${target} PUBLIC gRPC::grpc++)
  endif()
  target_compile_options(${target} PRIVATE -w)
endfunction()
