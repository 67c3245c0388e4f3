// Temporary (geo branch): the lead's version also declares `pub mod dns;`.
pub mod mmdb;
