from neuralzip.cli import main

main()
