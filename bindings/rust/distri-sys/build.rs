// Links libdistri.so. DISTRI_LIB_DIR names its folder (a build tree's capi/, or an install
// prefix's lib/); without it the system's library path is searched.
fn main() {
    println!("cargo:rerun-if-env-changed=DISTRI_LIB_DIR");
    if let Ok(dir) = std::env::var("DISTRI_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", dir);
    }
    println!("cargo:rustc-link-lib=dylib=distri");
}
