pub use joule_core;
