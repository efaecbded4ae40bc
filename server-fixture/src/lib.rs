//! server-fixture
