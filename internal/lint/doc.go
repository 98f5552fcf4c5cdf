// SPDX-License-Identifier: Apache-2.0

// Package lint holds no code: its tests check rules over the repository's
// own sources that the compiler and vet do not: a test waits on what it
// can observe and sleeps only where time is what it tests
// (TestSleepsAreTimeUnderTest); docs/DEVELOPING.md's layout names every
// package directory once (TestLayoutListsEveryPackage).
package lint
