//go:build !race

package service

// raceDetector says the tests run with the race detector, which moves more values to the heap.
const raceDetector = false
